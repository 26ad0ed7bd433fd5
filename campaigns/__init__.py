"""Target profiles, campaigns, participations, assessments, answers, results and exports.

Not built yet (issue: campaigns); the package exists so the layout, the packaging and the
dependency-direction test already cover it.
"""
