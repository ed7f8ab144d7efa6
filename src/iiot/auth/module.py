"""Authentication: login, token refresh, sign-out, tenant switching, password change and reset."""

from iiot.auth.api import router
from iiot.auth.service import purge_expired_reset_tokens
from iiot.modules import Job, Module

MODULE = Module(
    name="auth",
    api_routers=(router,),
    jobs=(Job("auth.reset_tokens.purge", 3600, purge_expired_reset_tokens),),
)
