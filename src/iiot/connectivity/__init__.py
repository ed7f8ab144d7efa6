"""Device connectivity independent of the transport: the ThingsBoard device API's JSON forms,
device attributes, RPC to and from devices, gateway sub-devices, the live-session hub and the
HTTP device API. Transports (HTTP here, MQTT in `iiot.mqtt`) map their messages onto
`iiot.connectivity.service`."""
