"""The outbox: messages to the outside world (e-mail, signed webhook calls) written in the
transaction of the change that causes them and delivered after it commits, all under one
policy and by one job.

Each kind keeps its rows where its tenancy puts them: e-mail in the platform table
`mail_outbox` (a password-reset mail belongs to no tenant), webhook calls in the tenant table
`webhook_deliveries` (forced row-level security: the URL, body and signing secret of one
tenant are never readable in another's session). What is shared is the mechanism:

- a kind (`iiot.delivery.loop.Kind`) says how to find due rows, claim one, hand it over
  (SMTP, or an HTTP POST signed with HMAC-SHA256) and record the outcome;
- `iiot.delivery.retry` decides the outcome of every attempt: delivered; retried with
  exponential backoff (30 s doubling up to one hour); or, after `MAX_ATTEMPTS`, parked
  (status `failed`), where it stays for the tenant's admins to see
  (`GET /api/v1/tenants/{id}/outbox/parked`) and is never tried again;
- an attempt claims its row with a lease (the row is due again only after `LEASE_SECONDS`),
  commits, then delivers outside any transaction, so several processes can deliver at once
  without sending a message twice, and a process that dies mid-call leaves the row to be
  retried;
- `deliver_soon` starts delivering just-committed rows in the background; the periodic job
  `outbox.deliver` (`iiot.outbox.module`) retries whatever is due, of every kind.
"""
