"""Outgoing webhooks: each organization's endpoints, and the outbox of their deliveries.

- `events`: the registry of the events an endpoint may subscribe to. `tenants` knows none of
  the later packages' events: each registers its own when imported (`campaigns.events`), and
  the entry point (`api.runtime`) imports them in every process.
- `endpoints`: what the console does with an organization's endpoints (add, edit, enable,
  delete, reveal or rotate the signing secret, send a test event, read the delivery log).
- `destinations`: which addresses webhooks may reach (the SSRF guard).
- `delivery`: the outbox written in the change's transaction, signing, the attempts through a
  `WebhookSender`, the back-off, the per-minute sweep and the hourly purge.

Design: docs/adr/0012-outgoing-webhooks.md; the receiver's side: docs/webhooks.md.
"""
