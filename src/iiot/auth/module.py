"""Authentication: login, token refresh, logout, tenant switching."""

from iiot.auth.api import router
from iiot.modules import Module

MODULE = Module(name="auth", api_routers=(router,))
