"""Push the staged folder to the Hugging Face Hub with an ``HfApi`` (injected in tests).

The token is ``HF_TOKEN`` or the one ``hf auth login`` stored (``huggingface_hub.get_token``);
it is handed to ``HfApi`` and never printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOGIN_HINT = (
    "set HF_TOKEN to a write token (https://huggingface.co/settings/tokens) or run "
    "`hf auth login`; --dry-run OUT_DIR needs no token"
)


class HubError(RuntimeError):
    """The Hub refused or could not be reached; the message says what to do."""


@dataclass(frozen=True)
class Pushed:
    """Where the folder went."""

    url: str
    commit_url: str | None
    private: bool | None


def token() -> str | None:
    """``HF_TOKEN`` or the stored login, or None."""
    from huggingface_hub import get_token

    found: str | None = get_token()
    return found or None


def push(api: Any, repo_id: str, folder: Path, *, private: bool, commit_message: str) -> Pushed:
    """Create the model repository (kept if it exists) and upload ``folder`` as one commit.

    ``private``: create it private; an existing public repository is refused rather than
    published into (``create_repo`` never changes an existing repository's visibility).
    """
    from huggingface_hub.errors import HfHubHTTPError

    try:
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        visible = getattr(api.repo_info(repo_id, repo_type="model"), "private", None)
        if private and visible is False:
            raise HubError(
                f"--private: https://huggingface.co/{repo_id} already exists and is public; "
                "nothing was uploaded: make it private in its settings first, or drop --private "
                "to publish publicly"
            )
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(folder),
            commit_message=commit_message,
        )
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            raise HubError(
                f"the Hub refused the token for {repo_id} ({status}): it needs write access to "
                f"the namespace {repo_id.split('/')[0]}; {LOGIN_HINT}"
            ) from None
        raise HubError(f"the Hub refused the upload to {repo_id}: {exc}") from None
    except OSError as exc:  # requests' ConnectionError is an OSError
        raise HubError(f"cannot reach the Hub ({exc}): check the network and retry") from None
    return Pushed(
        url=str(url),
        commit_url=getattr(commit, "commit_url", None),
        private=visible,
    )
