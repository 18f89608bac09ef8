"""``hf_towers.publish.hub`` with a recording stand-in for ``HfApi`` (no hub is contacted): the
calls, the private-repository guard and the Hub's refusals as messages without the token."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError

from hf_towers.publish import hub


class FakeApi:
    """Records calls; ``exists_public`` makes the repository an existing public one."""

    def __init__(self, *, exists_public: bool = False, fail: int | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.exists_public = exists_public
        self.fail = fail
        self.private: bool | None = None

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        if self.fail:
            response = requests.Response()
            response.status_code = self.fail
            raise HfHubHTTPError("refused", response=response)
        if self.private is None:
            self.private = False if self.exists_public else bool(kwargs["private"])
        return f"https://huggingface.co/{repo_id}"

    def repo_info(self, repo_id: str, **kwargs: Any) -> Any:
        self.calls.append(("repo_info", {"repo_id": repo_id, **kwargs}))
        return SimpleNamespace(private=self.private)

    def upload_folder(self, **kwargs: Any) -> Any:
        folder = Path(kwargs["folder_path"])
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        self.calls.append(("upload_folder", {**kwargs, "files": files}))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/abc")


def test_push_creates_the_repo_and_uploads_the_folder_as_one_commit(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("card")
    (tmp_path / "config.json").write_text("{}")
    api = FakeApi()
    pushed = hub.push(api, "my-org/clip", tmp_path, private=True, commit_message="Publish clip")
    assert [name for name, _ in api.calls] == ["create_repo", "repo_info", "upload_folder"]
    assert api.calls[0][1] == {
        "repo_id": "my-org/clip",
        "repo_type": "model",
        "private": True,
        "exist_ok": True,
    }
    upload = api.calls[2][1]
    assert upload["repo_id"] == "my-org/clip"
    assert upload["commit_message"] == "Publish clip"
    assert upload["files"] == ["README.md", "config.json"]
    assert pushed.private is True
    assert pushed.commit_url == "https://huggingface.co/my-org/clip/commit/abc"


def test_private_is_refused_for_an_existing_public_repo_before_any_upload(tmp_path: Path) -> None:
    api = FakeApi(exists_public=True)
    with pytest.raises(hub.HubError, match="already exists and is public; nothing was uploaded"):
        hub.push(api, "my-org/clip", tmp_path, private=True, commit_message="m")
    assert "upload_folder" not in [name for name, _ in api.calls]


@pytest.mark.parametrize(
    ("status", "expected"), [(401, "refused the token"), (500, "refused the upload")]
)
def test_hub_refusals_become_messages(tmp_path: Path, status: int, expected: str) -> None:
    with pytest.raises(hub.HubError, match=expected) as info:
        hub.push(FakeApi(fail=status), "my-org/clip", tmp_path, private=False, commit_message="m")
    if status == 401:
        assert "HF_TOKEN" in str(info.value) and "hf auth login" in str(info.value)


def test_token_comes_from_hf_token_or_the_stored_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    assert hub.token() is None
    (tmp_path / "token").write_text("hf_stored")
    assert hub.token() == "hf_stored"
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert hub.token() == "hf_env"
