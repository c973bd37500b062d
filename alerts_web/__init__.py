"""alerts_web: the Django + Channels app nurses, planners and integrators use.

Ward dashboards with live alerts over WebSocket, patient risk pages (PDF/CSV), a
what-if form, the integrators' REST + FHIR RiskAssessment API, CDS Hooks and an ops
page. Run management commands with ``python -m alerts_web <command>``.
"""
