"""Live updates for the web UI: a tenant-scoped Server-Sent Events stream."""
