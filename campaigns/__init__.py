"""Campaigns: target profiles, campaigns and their codes, learners, participations, adaptive
assessments, answers and results.

Organizers' campaigns and what they read:
- `service` — organizers' use cases: create, edit, duplicate, open, close, archive;
- `campaign_fields` — a campaign's fields as chosen and as stored, and their rules, pure: the
  dates typed in a form read in the organization's time zone, the checks before storing;
- `campaign_stats` — a campaign's funnel and the levels of its shared results;
- `campaign_listing` — the one read path of campaigns with their funnel, a campaign's
  participations, shared results and progress over time (console, dashboard, JSON API, demo);
- `paging` — keyset pages shared by the listings: `Page`, limits, cursors both ways;
- `exports` — a campaign's shared results as CSV or XLSX, streamed or as a background task;
- `events` — the campaign events announced to webhooks (importing it registers them);
- `access` — who may act on campaigns and learners, and a participant's id;
- `codes` — campaign codes: generation, normalization and the check character.

Target profiles and content:
- `profile_catalogue` — the code-defined profile catalogue, built from the bank's framework,
  and the checks of a profile against a bank;
- `target_profiles` — a tenant's own, versioned profiles;
- `content` — which challenge bank campaigns are served, loaded once per process;
- `exposure` — the global exposure ledger, how often each challenge is served (ADR 0017);
- `problem_reports` — participants' reports on challenges, withdrawal, staff triage (ADR 0013).

Learners (ADR 0011):
- `learners` — who may read and import learners, their groups and count;
- `learner_listing` — the one read path of learners (newest first, or by name), one learner
  with their participations, and the search and group filters of every list of people;
- `learner_csv` — reading a learners file, pure: bytes in, checked rows and problems out;
- `learner_rows` — one row of the file checked cell by cell, and the fields' limits;
- `learner_import` — the all-or-nothing import, and the job that writes a large file.

Participants and the test:
- `participation` — participants' use cases (a package): resolve a code, start or resume,
  the current challenge, answer, share, and their rules as pure functions;
- `assessment` — the engine glue without I/O (configuration from the frozen snapshot, next
  step, result).

Storage: `tables` (Piccolo tables mirroring the migrations' SQL), `piccolo_app` (the app and
its `piccolo_migrations`).

Design, state model and query budget: docs/adr/0009-campaign-assessment-state.md.
"""
