"""The container's handler service, run in this process the way a model-server worker runs it.

In the SageMaker Hugging Face inference container, multi-model-server (MMS) starts workers that
load ``HuggingFaceHandlerService``; each request reaches its ``handle(data, context)`` with the
body as a ``bytearray`` (the container sets ``decode_input_request=false``) and the request
headers in ``context.request_processor``. ``HandlerHost`` builds the same ``Context``,
``RequestProcessor`` and ``MetricsStore`` and maps the outcome to an HTTP status the way
``mms.service.Service.predict`` does: ``PredictionException`` -> its code (the toolkit raises 400
for every exception of the user code), ``MemoryError`` -> 507, anything else -> 503.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mms
import torch
from mms.context import Context, RequestProcessor
from mms.metrics.metrics_store import MetricsStore
from mms.service import PredictionException
from sagemaker_huggingface_inference_toolkit.handler_service import HuggingFaceHandlerService

JSON = "application/json"

# ``code/`` folders that hosts of this process put on ``sys.path`` (the toolkit inserts them and
# imports the entry module by its bare name, ``inference``).
_CODE_DIRS: list[Path] = []


@dataclass(frozen=True)
class Response:
    """One answer of the handler: HTTP status, body and its content type."""

    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def _error(status: int, message: str) -> Response:
    # The body MMS's frontend sends for a failed prediction.
    body = {"code": status, "type": "InternalServerException", "message": message}
    return Response(status, json.dumps(body).encode(), JSON)


def _forget_other_code_dirs() -> None:
    """Make the next ``import inference`` find the new model's module, not a cached one.

    One worker process serves one model in the container; here tests and benchmarks load several
    model dirs in one process. Hosts loaded earlier keep the functions they already bound.
    """
    for code_dir in _CODE_DIRS:
        while str(code_dir) in sys.path:
            sys.path.remove(str(code_dir))
    # The toolkit imports from ``os.path.join(model_dir, "code")`` with ``model_dir`` resolved,
    # so a module loaded from there has a ``__file__`` under that exact prefix: a string test
    # per module, not a ``realpath`` (which made the 20th load in a process take a second).
    prefixes = tuple(f"{code_dir}{os.sep}" for code_dir in _CODE_DIRS)
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if prefixes and isinstance(origin, str) and origin.startswith(prefixes):
            del sys.modules[name]


class HandlerHost:
    """``HuggingFaceHandlerService`` for one model directory (``code/`` inside it, if any).

    The environment (``HF_TASK``, ``MAX_BATCH_SIZE``, ``MAIN_MODULE_NAME`` ...) is read from
    ``os.environ`` when ``load`` runs, as the container reads it when a worker starts. Requests
    are served one at a time, as one MMS worker does.
    """

    def __init__(self, model_dir: str | Path, model_name: str = "model") -> None:
        self.model_dir = Path(model_dir).resolve()
        self.service = HuggingFaceHandlerService()
        gpu = 0 if torch.cuda.is_available() else None
        manifest = {"model": {"modelName": model_name}}
        self.context = Context(model_name, str(self.model_dir), manifest, 1, gpu, mms.__version__)
        self._lock = threading.Lock()
        self._transform_batch: Any = None

    @property
    def loaded(self) -> bool:
        """Whether ``load`` has finished."""
        return bool(self.service.initialized)

    def load(self) -> None:
        """Import ``code/inference.py`` if there is one and run ``model_fn`` (else HF_TASK)."""
        with self._lock:
            _forget_other_code_dirs()
            _CODE_DIRS.append(self.model_dir / "code")
            self.service.initialize(self.context)
            # The tower's ``transform_batch`` (model_code/*/inference.py), bound now: a later
            # load in this process drops the module from ``sys.modules``.
            module = sys.modules.get(self.service.environment.module_name)
            origin = str(getattr(module, "__file__", ""))
            if origin.startswith(f"{self.model_dir / 'code'}{os.sep}"):
                self._transform_batch = getattr(module, "transform_batch", None)

    @property
    def batches(self) -> bool:
        """Whether ``invoke_batch`` runs several requests in one pass (the tower's code has
        ``transform_batch``); else it answers them one by one, as the toolkit's handle does."""
        return callable(self._transform_batch)

    def invoke(self, body: bytes, content_type: str | None, accept: str | None = None) -> Response:
        """One ``POST /invocations``: the body and its headers in, the handler's answer out."""
        headers = {"Content-Type": content_type, "Accept": accept}
        request_ids = {0: str(uuid.uuid4())}
        with self._lock:
            self.context.request_ids = request_ids
            self.context.request_processor = [
                RequestProcessor({k: v for k, v in headers.items() if v is not None})
            ]
            self.context.metrics = MetricsStore(request_ids, self.context.model_name)
            try:
                answers = self.service.handle([{"body": bytearray(body)}], self.context)
            except PredictionException as error:
                return _error(int(error.error_code), str(error.message))
            except MemoryError:
                return _error(507, "Out of resources")
            except Exception:
                return _error(503, "Prediction failed")
            returned = self.context.get_response_content_type(0) or JSON
        if not isinstance(answers, list) or len(answers) != 1:
            return _error(503, "Invalid model predict output")
        answer = answers[0]
        payload = answer.encode() if isinstance(answer, str) else bytes(answer)
        return Response(200, payload, str(returned))

    def invoke_batch(self, requests: list[tuple[bytes, str | None, str | None]]) -> list[Response]:
        """Several clients' ``(body, content_type, accept)`` in, their answers in order out.

        The same call MMS's worker makes into ``inference:handle`` with a batch: one
        ``transform_batch`` over all requests, each answered (or refused) on its own. Without
        ``transform_batch`` (a task model, a code/ of one's own) each goes through ``invoke``.
        """
        if not self.batches:
            return [self.invoke(*request) for request in requests]
        # The toolkit's defaults: no Accept, or */*, is JSON.
        normalised = [
            (body, content_type, JSON if not accept or accept == "*/*" else accept)
            for body, content_type, accept in requests
        ]
        with self._lock:
            try:
                answers = self._transform_batch(self.service.model, normalised)
            except MemoryError:
                return [_error(507, "Out of resources")] * len(requests)
            except Exception:
                return [_error(503, "Prediction failed")] * len(requests)
        if not isinstance(answers, list) or len(answers) != len(requests):
            return [_error(503, "number of batch response mismatched")] * len(requests)
        return [
            Response(
                int(answer.status),
                answer.body.encode() if isinstance(answer.body, str) else bytes(answer.body),
                str(answer.content_type),
            )
            for answer in answers
        ]
