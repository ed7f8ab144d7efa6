"""Alerts and their lifecycle."""

from iiot.alerts.api import router
from iiot.alerts.service import alert_usage
from iiot.modules import Module

MODULE = Module(name="alerts", api_routers=(router,), usage_providers=(alert_usage,))
