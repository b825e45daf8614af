"""Who pays: a person is a Hugging Face account or a client address; headers a client writes move nothing."""

from __future__ import annotations

import pytest

from lab.people import Caller, HubAccounts, People, address_person, bearer_token, client_address


def accounts(known: dict[str, str], asked: list[str] | None = None) -> HubAccounts:
    """A Hub that knows ``known`` tokens (the test double goes in through the constructor)."""
    def whoami(token: str) -> str | None:
        if asked is not None:
            asked.append(token)
        return known.get(token)
    return HubAccounts(whoami)


ALICE = "hf_" + "a" * 34


def test_off_a_proxy_the_socket_address_is_the_client_whatever_the_headers_say():
    assert client_address("198.51.100.9", "203.0.113.7", trusted_hops=0) == "198.51.100.9"


def test_behind_one_proxy_the_address_it_appended_wins_over_what_the_client_wrote():
    # The client sent "X-Forwarded-For: 203.0.113.7"; the proxy appended the address it saw.
    assert client_address("10.0.0.2", "203.0.113.7, 198.51.100.9", trusted_hops=1) == "198.51.100.9"
    assert client_address("10.0.0.2", "203.0.113.7, 198.51.100.9, 10.0.0.1", trusted_hops=2) == "198.51.100.9"


def test_a_forwarded_header_that_is_not_an_address_falls_back_to_the_socket():
    assert client_address("10.0.0.2", "not-an-address", trusted_hops=1) == "10.0.0.2"


def test_an_ipv6_client_is_its_64_network():
    assert address_person("2001:db8:1:2:aaaa::1") == address_person("2001:db8:1:2:bbbb::9") == "ip:2001:db8:1:2::/64"
    assert address_person("::ffff:203.0.113.7") == "ip:203.0.113.7"


def test_the_token_comes_from_gradio_clients_header_or_authorization():
    assert bearer_token({"X-HF-Authorization": f"Bearer {ALICE}"}) == ALICE
    assert bearer_token({"authorization": f"bearer {ALICE}"}) == ALICE
    assert bearer_token({"authorization": "Basic abc"}) is None


def test_an_api_caller_with_a_token_is_its_account_across_clients():
    people = People(0, accounts({ALICE: "alice"}))
    first = people.caller(session=None, page="page-1", peer="127.0.0.1", headers={}, token=ALICE)
    second = people.caller(session=None, page="page-2", peer="127.0.0.1",
                           headers={"x-hf-authorization": f"Bearer {ALICE}"})
    assert first == second == Caller("hf:alice", "hf:alice")


def test_without_a_token_each_client_is_a_session_of_its_own_and_its_address_pays():
    people = People(0, accounts({}))
    first = people.caller(session=None, page="page-1", peer="127.0.0.1", headers={})
    second = people.caller(session=None, page="page-2", peer="127.0.0.1", headers={"x-forwarded-for": "1.2.3.4"})
    assert (first.session, second.session) == ("page-1", "page-2")
    assert first.person == second.person == "ip:127.0.0.1"


def test_a_browser_keeps_its_session_and_a_signed_in_one_is_its_account():
    people = People(1, accounts({}))
    browser = people.caller(session="b-" + "x" * 24, page="p", peer="10.0.0.2", headers={"x-forwarded-for": "9.9.9.9"})
    assert browser == Caller("b-" + "x" * 24, "ip:9.9.9.9")
    assert people.caller(session="hf:alice", page="p", peer="10.0.0.2", headers={}) == Caller("hf:alice", "hf:alice")


def test_a_token_the_hub_refuses_is_no_one_and_is_asked_about_once():
    asked: list[str] = []
    people = People(0, accounts({}, asked))
    for _ in range(3):
        assert people.caller(session=None, page="p", peer="127.0.0.1", headers={}, token=ALICE).person == "ip:127.0.0.1"
    assert asked == [ALICE]


@pytest.mark.parametrize("junk", ["", "x", "hf_" + "a" * 600, "hf_a b c d e f", "hf_\u00e9" * 5])
def test_junk_tokens_are_never_sent_to_the_hub(junk):
    asked: list[str] = []
    assert accounts({}, asked).username(junk) is None and asked == []


def test_a_hub_that_cannot_be_asked_leaves_the_caller_an_address():
    def down(token: str) -> str | None:
        raise OSError("no network")
    people = People(0, HubAccounts(down))
    assert people.caller(session=None, page="p", peer="127.0.0.1", headers={}, token=ALICE).person == "ip:127.0.0.1"


def test_the_default_lookup_asks_the_hubs_whoami_with_huggingface_hub():
    from helpers import fake_hub
    from lab.people import hub_whoami

    with fake_hub({ALICE: "alice"}) as endpoint:
        whoami = hub_whoami(endpoint)
        assert whoami(ALICE) == "alice"
        assert whoami("hf_" + "b" * 34) is None  # the Hub refused it: no one
