"""Who may see a run (ui.service.access): owner, public sample runs, a gallery server, a share token. No Streamlit."""

from __future__ import annotations

from ui.service.access import Access, find_shared, may_view, read_access, share_token, write_access


def test_only_the_owner_sees_a_private_run(tmp_path):
    write_access(tmp_path, Access(owner="a" * 32))
    access = read_access(tmp_path)
    assert may_view(access, "a" * 32)
    assert not may_view(access, "b" * 32)
    assert not may_view(Access(), "")  # no owner recorded: nobody matches, not even an empty key
    assert may_view(access, "b" * 32, gallery=True)
    assert may_view(Access(owner="a" * 32, public=True), "b" * 32)


def test_a_share_token_opens_one_run_and_only_that_one(tmp_path):
    mine, other = tmp_path / "run1", tmp_path / "run2"
    for folder in (mine, other):
        folder.mkdir()
        write_access(folder, Access(owner="a" * 32))
    token = share_token(mine)
    assert len(token) >= 22 and share_token(mine) == token  # >= 128 bits, made once
    assert find_shared(tmp_path, token) == "run1"
    assert may_view(read_access(mine), "b" * 32, share=token)
    assert not may_view(read_access(other), "b" * 32, share=token)
    one_off = token[:-1] + ("y" if token.endswith("x") else "x")  # the token is random: it may end in "x" itself
    assert find_shared(tmp_path, "../run1") is None and find_shared(tmp_path, one_off) is None
    assert read_access(mine).owner == "a" * 32  # sharing keeps the owner


def test_a_damaged_access_record_makes_the_run_private(tmp_path):
    for text in ('{"owner": "a', "[]", '{"owner": "a", "public": "yes", "share": "../../x"}'):
        (tmp_path / "access.json").write_text(text)
        access = read_access(tmp_path)
        assert access.public is False and access.share is None


def test_user_text_renders_literally_with_no_link_left_to_match():
    """plain() escapes Markdown, and a word joiner breaks the bare-URL, www. and e-mail autolinks that Streamlit's
    renderer makes even of escaped text (the browser test shows no link is left)."""
    from ui.service.text import JOINER, plain

    shown = plain("[x](https://evil.example/a) www.evil.example me@evil.example :red[boom] $x$")
    assert (
        shown.replace("\\", "").replace(JOINER, "")
        == "[x](https://evil.example/a) www.evil.example me@evil.example :red[boom] $x$"
    )
    assert "](" not in shown and "://" not in shown and "www" not in shown and ":red[" not in shown
    assert "me@" not in shown.replace("\\", "")  # the joiner stands between the name and the @
    assert plain("a" * 300).endswith("…") and len(plain("a" * 300)) == 120
