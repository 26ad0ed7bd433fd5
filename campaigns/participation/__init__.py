"""Campaign use cases for participants: resolve a code, start (or resume) a participation,
answer one challenge at a time, read the result and share it.

A participant acts in the campaign's tenant with no permission (`landing.participant_context`)
and only ever reaches their own participations: every query joins the learner and checks its
`user_id`, and another tenant's or another person's ids answer `NotFound` like unknown ones.
State model and query budget: docs/adr/0009-campaign-assessment-state.md.

- `landing`: the campaign behind a participant's code and what its landing page shows, and the
  context a signed-in participant acts in.
- `start`: start a participation or resume the started one, a retake, a profiles collection.
- `answering`: the current challenge, recording an answer, a timed challenge's clock.
- `results`: a participation and its result, sharing it with the organization, and a
  person's own participations in every organization.
- `views`: the participation as its participant sees it, shared by `start` and `results`.
- `rules`: the rules as pure functions (whether a campaign takes participants, retakes, the
  test's language, a late answer), with no I/O.

Import from the module that holds a name: this package re-exports nothing.
"""
