from tests.fixtures.factories import PASSWORD, World


async def test_login_me_refresh(world: World) -> None:
    admin = world.a["admin"]
    r = await world.anonymous.post(
        "/api/v1/auth/login", json={"email": admin.email, "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["tenant"]["id"] == str(world.tenant_a.id)
    assert body["user"]["role"] == "admin"
