"""Before accepting, an invitee with an account is known to the tenant only by e-mail (#8)."""

from __future__ import annotations

from tests.fixtures.factories import Factory, World


async def test_inviting_an_existing_account_shows_only_the_email(
    factory: Factory, world: World
) -> None:
    person = await factory.user(full_name="Grace Private")
    await factory.membership(world.tenant_b, person, "admin")
    admin = world.a["admin"]
    base = f"/api/v1/tenants/{world.tenant_a.id}/users"
    r = await admin.client.post(f"{base}/invite", json={"email": person.email, "role": "viewer"})
    assert r.status_code in (200, 201), r.text
    assert str(person.id) not in r.text
    assert "Grace Private" not in r.text
    listed = (await admin.client.get(base)).json()["users"]
    [entry] = [u for u in listed if u["email"] == person.email]
    assert entry["status"] == "invited"
    assert entry["full_name"] is None
    assert entry["user_id"] != str(person.id)
    audit = await admin.client.get(f"/api/v1/tenants/{world.tenant_a.id}/audit")
    assert str(person.id) not in audit.text
    # The id shown works wherever a member id is taken, e.g. to change the role, to withdraw.
    r = await admin.client.patch(f"{base}/{entry['user_id']}/role", json={"role": "operator"})
    assert r.status_code == 200, r.text
    assert str(person.id) not in r.text
    r = await admin.client.delete(f"{base}/{entry['user_id']}")
    assert r.status_code == 204, r.text
    assert person.email not in (await admin.client.get(base)).text
