"""Members and invitations."""

from iiot.modules import Module
from iiot.users.api import router
from iiot.users.service import member_figures

MODULE = Module(name="users", api_routers=(router,), usage_providers=(member_figures,))
