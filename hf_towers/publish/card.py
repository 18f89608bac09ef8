"""The model card: Hugging Face ``ModelCard`` metadata (YAML) and a body that says what the
model is, what it was trained and evaluated on, what it is for and how to call its endpoints.

The metadata follows the Hub's model card spec (``huggingface_hub.ModelCardData``: ``base_model``,
``datasets``, ``license``, ``library_name``, ``pipeline_tag``, ``tags`` and the evaluation as
``model-index`` results, https://huggingface.co/docs/hub/model-cards). The endpoint contract is
the towers' (``docs/inference.md``) or, for a task model, the toolkit's pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hf_towers.publish.metrics import Metric
from hf_towers.publish.registry import Package

DUAL_ENCODER_TAG = "zero-shot-image-classification"
"""The Hub's pipeline for a CLIP-style checkpoint (what ``pipeline(...)`` runs from the Hub)."""
DUAL_ENCODER_TASK = "feature-extraction"
"""``model-index`` task of the retrieval metrics: the towers return embeddings."""
NOT_STATED = "not stated"

# The request the toolkit's pipeline takes, per task (``{"inputs": ..., "parameters": ...}``).
TASK_EXAMPLES: dict[str, str] = {
    "question-answering": '{"inputs": {"question": "Who wrote it?", "context": "It was written by Ada."}}',
    "text2text-generation": '{"inputs": "translate English to German: Hello", "parameters": {"max_new_tokens": 20}}',
    "summarization": '{"inputs": "A long text ...", "parameters": {"max_new_tokens": 60}}',
    "text-classification": '{"inputs": "I love it"}',
    "fill-mask": '{"inputs": "Paris is the [MASK] of France."}',
}


@dataclass(frozen=True)
class Endpoint:
    """One deployed tower of the configuration that serves this model."""

    tower: str
    kind: str
    endpoint_name: str
    mode: str
    deploys_endpoint: bool
    api_route: str | None = None


@dataclass(frozen=True)
class CardInputs:
    """Everything the card says; ``metrics_source`` is a sentence naming where they came from."""

    repo_id: str
    kind: str
    hf_task: str | None
    project: str
    environment: str
    region: str
    config_file: str
    endpoints: tuple[Endpoint, ...]
    metrics: tuple[Metric, ...]
    metrics_source: str
    model_config: dict[str, Any]
    files: tuple[str, ...]
    base_model: str | None = None
    datasets: tuple[str, ...] = ()
    training_data: str | None = None
    license: str | None = None
    package: Package | None = None
    api_auth: str | None = None
    main_module: str | None = None
    """The tower's ``main_module_name``: the user's own architecture instead of CLIP."""
    extra_tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def dual_encoder(self) -> bool:
        return self.kind in ("vision", "text")

    @property
    def model_name(self) -> str:
        return self.repo_id.split("/", 1)[1]

    @property
    def clip(self) -> bool:
        """A CLIP checkpoint (the towers' default code), not the user's own architecture."""
        return self.dual_encoder and self.main_module is None

    @property
    def pipeline_tag(self) -> str | None:
        if self.dual_encoder:
            return DUAL_ENCODER_TAG if self.clip else DUAL_ENCODER_TASK
        return self.hf_task


def card_data(inputs: CardInputs) -> ModelCardData:
    """The YAML metadata: the Hub reads it for search, widgets and the evaluation table.

    The results carry no ``source`` (the Hub wants a URL with it, and a registry version has no
    public one); the body's Provenance names the package and its report."""
    task = DUAL_ENCODER_TASK if inputs.dual_encoder else (inputs.hf_task or "other")
    dataset = inputs.datasets[0] if inputs.datasets else "custom"
    dataset_name = f"{inputs.training_data or 'training data'} (held-out split)"
    results = [
        EvalResult(
            task_type=task,
            task_name="Image-text retrieval" if inputs.dual_encoder else task,
            dataset_type=dataset,
            dataset_name=dataset_name,
            dataset_split="validation",
            metric_type=metric.type,
            metric_name=metric.name,
            metric_value=metric.value,
        )
        for metric in inputs.metrics
    ]
    tags = ["hf-towers", "sagemaker"]
    if inputs.dual_encoder:
        tags += (
            ["clip", "dual-encoder", "embeddings"]
            if inputs.clip
            else ["dual-encoder", "embeddings"]
        )
    tags += [t for t in inputs.extra_tags if t not in tags]
    return ModelCardData(
        model_name=inputs.model_name,
        base_model=inputs.base_model,
        datasets=list(inputs.datasets) or None,
        license=inputs.license,
        library_name="transformers",
        pipeline_tag=inputs.pipeline_tag,
        tags=tags,
        eval_results=results,
    )


def _architecture(config: dict[str, Any]) -> str:
    names = config.get("architectures") or []
    arch = ", ".join(str(n) for n in names) if isinstance(names, list) and names else "unknown"
    parts = [f"`{arch}` (`model_type` {config.get('model_type', 'unknown')!s})"]
    if "projection_dim" in config:
        parts.append(f"embeddings of {config['projection_dim']} float32 values, L2-normalised")
    text = config.get("text_config") or {}
    vision = config.get("vision_config") or {}
    if isinstance(text, dict) and "max_position_embeddings" in text:
        parts.append(f"text window {text['max_position_embeddings']} tokens")
    if isinstance(vision, dict) and "image_size" in vision:
        size = vision["image_size"]
        parts.append(f"images resized and cropped to {size} x {size}")
    return "; ".join(parts)


def _metrics_table(inputs: CardInputs) -> str:
    rows = "\n".join(f"| {m.name} | `{m.type}` | {m.value:.4g} |" for m in inputs.metrics)
    return f"| metric | type | value |\n| --- | --- | --- |\n{rows}\n\n{inputs.metrics_source}"


def _invoke(endpoint: Endpoint, region: str, hf_task: str | None) -> str:
    name = endpoint.endpoint_name
    if endpoint.mode == "async":
        return (
            f"`{name}` is asynchronous: upload the request to S3 and call\n\n"
            f"```bash\naws sagemaker-runtime invoke-endpoint-async --region {region} "
            f"--endpoint-name {name} \\\n    --content-type application/json "
            "--input-location s3://<bucket>/<request prefix>/request.json\n```\n\n"
            "The answer is written under the tower's output prefix."
        )
    if endpoint.kind == "vision":
        return (
            f"```bash\naws sagemaker-runtime invoke-endpoint --region {region} --endpoint-name {name} \\\n"
            "    --content-type image/jpeg --body fileb://photo.jpg embedding.json\n```"
        )
    if endpoint.kind == "text":
        body = '{"inputs": ["a photo of a cat", "a red bicycle"]}'
    else:
        body = TASK_EXAMPLES.get(hf_task or "", '{"inputs": "..."}')
    return (
        f"```bash\naws sagemaker-runtime invoke-endpoint --region {region} --endpoint-name {name} \\\n"
        f"    --content-type application/json --cli-binary-format raw-in-base64-out \\\n"
        f"    --body '{body}' answer.json\n```"
    )


def _contract(kind: str, hf_task: str | None) -> str:
    if kind == "vision":
        return (
            "Request: one image as `image/jpeg`, `image/png` or `image/webp` (raw bytes), or "
            '`application/json` `{"inputs": "<base64>"}` / `{"inputs": ["<base64>", ...]}`. '
            'Answer (`Accept: application/json`, the default): `{"embeddings": [[...], ...]}`, '
            "one L2-normalised float32 row per image in request order; `application/x-npy` gives "
            "the same as a float32 array `(n, dim)`."
        )
    if kind == "text":
        return (
            'Request: `application/json` `{"inputs": "a query"}` or `{"inputs": ["a query", ...]}`, '
            "or one UTF-8 text as `text/plain`. Answer: "
            '`{"embeddings": [[...], ...], "truncated": [false, ...]}` (a text longer than the '
            "window is cut to its beginning and flagged), or `application/x-npy` without the flags."
        )
    return (
        f"The Hugging Face inference toolkit runs the `{hf_task}` pipeline: "
        '`application/json` `{"inputs": ..., "parameters": {...}}`, answered with the '
        "pipeline's output as JSON."
    )


def _endpoints_section(inputs: CardInputs) -> str:
    if not inputs.endpoints:
        return "No tower of the configuration deploys this model."
    parts = [
        f"Deployed by hf-towers from `{inputs.config_file}` (project "
        f"`{inputs.project}`, environment `{inputs.environment}`, region `{inputs.region}`). "
        "Callers need `sagemaker:InvokeEndpoint` on the endpoint. A request carries 1 to "
        "`MAX_BATCH_SIZE` (default 32) items, embedded in one forward pass; a bad request gets "
        "HTTP 400 with a message naming the problem."
        if inputs.dual_encoder
        else f"Deployed by hf-towers from `{inputs.config_file}` (project `{inputs.project}`, "
        f"environment `{inputs.environment}`, region `{inputs.region}`). Callers need "
        "`sagemaker:InvokeEndpoint` on the endpoint."
    ]
    for endpoint in inputs.endpoints:
        parts.append(f"### {endpoint.kind} tower `{endpoint.tower}`")
        if not endpoint.deploys_endpoint:
            parts.append(
                "The configuration creates the SageMaker Model only (`deploy_endpoint: false`): "
                "there is no endpoint to call until it deploys one."
            )
            continue
        parts.append(_contract(endpoint.kind, inputs.hf_task))
        parts.append(_invoke(endpoint, inputs.region, inputs.hf_task))
        if endpoint.api_route:
            auth = (
                "SigV4-signed (IAM: `execute-api:Invoke` on the route)"
                if inputs.api_auth == "iam"
                else "with an API key in `x-api-key`"
            )
            parts.append(
                f"Through the environment's API: `POST <ApiUrl>{endpoint.api_route}` ({auth}; "
                "`ApiUrl` is an output of the API stack), same bodies and headers."
            )
    return "\n\n".join(parts)


def _hub_usage(inputs: CardInputs) -> str:
    repo = inputs.repo_id
    if inputs.dual_encoder and not inputs.clip:
        return (
            f"The endpoints run the checkpoint's own architecture, `code/{inputs.main_module}` "
            "(`MAIN_MODULE_NAME`): download the repository "
            f'(`huggingface_hub.snapshot_download("{repo}")`) and load it with that module\'s '
            "`load_vision_tower` / `load_text_tower`, as the endpoints do."
        )
    if inputs.dual_encoder:
        return (
            "```python\nimport torch\nfrom transformers import CLIPModel, CLIPProcessor\n\n"
            f'model = CLIPModel.from_pretrained("{repo}")\n'
            f'processor = CLIPProcessor.from_pretrained("{repo}")\n'
            'inputs = processor(text=["a photo of a cat"], images=image, return_tensors="pt", padding=True)\n'
            "with torch.inference_mode():\n    out = model(**inputs)\n"
            "# out.image_embeds, out.text_embeds: normalise them to compare as the endpoints do\n```"
        )
    return (
        f'```python\nfrom transformers import pipeline\n\npipe = pipeline("{inputs.hf_task}", '
        f'model="{repo}")\n```'
    )


def _limits(inputs: CardInputs) -> str:
    items = [
        "The metrics above come from the held-out split of the training data only; they say "
        "nothing about other domains, languages or image sources. Evaluate on your own data "
        "before relying on it.",
        "It has not been evaluated for bias or fairness. Embeddings and answers inherit the "
        "biases of the base model's pre-training data and of the fine-tuning data.",
        "Not for decisions about people (identification, eligibility, surveillance) or any "
        "use where an error harms someone without a human check.",
    ]
    if inputs.dual_encoder:
        items.append(
            "Texts longer than the text window are truncated to their beginning (the text tower "
            "flags them); images are resized and centre-cropped, so detail at the edges is lost; "
            "images above `MAX_IMAGE_PIXELS` (64 MP by default) are refused."
        )
        items.append(
            "Embeddings are only comparable with embeddings of this same version: re-embed the "
            "catalogue when the model changes."
        )
    return "\n".join(f"- {item}" for item in items)


def _intended_use(inputs: CardInputs) -> str:
    if inputs.dual_encoder:
        return (
            "Embedding images and texts into one space for retrieval: the vision tower embeds a "
            "catalogue of images, the text tower embeds queries, and the dot product of two "
            "embeddings (L2-normalised, so the cosine) ranks the images for a query, or the "
            "texts for an image. Also usable for zero-shot classification against label texts."
        )
    return (
        f"The `{inputs.hf_task}` task it was fine-tuned for, through the `transformers` pipeline."
    )


def _provenance(inputs: CardInputs) -> str:
    lines = [f"- Files: {len(inputs.files)} ({', '.join(inputs.files[:12])}"]
    if len(inputs.files) > 12:
        lines[0] += f", ... {len(inputs.files) - 12} more"
    lines[0] += ")"
    if "code/inference.py" in inputs.files:
        lines.append(
            "- `code/` is the SageMaker inference code the endpoints run (ignored by "
            "`from_pretrained`)."
        )
    package = inputs.package
    if package:
        lines.append(
            f"- Model package: `{package.arn}` (group `{package.group}`, version "
            f"{package.version}, {package.status}); evaluation report `{package.report_uri}`"
        )
    lines.append(
        f"- Published with `hf-towers publish` from `{inputs.config_file}` "
        f"({inputs.project}-{inputs.environment})."
    )
    return "\n".join(lines)


def card_text(inputs: CardInputs) -> str:
    """The whole ``README.md``: YAML metadata between ``---`` lines, then the body."""
    if inputs.clip:
        kind = (
            "A CLIP-style dual encoder (a vision tower and a text tower whose embeddings share "
            "one space)"
        )
    elif inputs.dual_encoder:
        kind = (
            f"A dual encoder of its own architecture (`{inputs.main_module}`: a vision tower and a "
            "text tower whose embeddings share one space)"
        )
    else:
        kind = f"A `{inputs.hf_task}` model"
    base = f"`{inputs.base_model}`" if inputs.base_model else NOT_STATED
    summary = (
        f"{kind}, fine-tuned from {base} and served on Amazon SageMaker endpoints."
        if inputs.base_model
        else f"{kind}, served on Amazon SageMaker endpoints (its base model is not stated)."
    )
    body = f"""
# {inputs.model_name}

{summary}

## Model

- Base model: {base}
- Architecture: {_architecture(inputs.model_config)}
- License: {f"`{inputs.license}`" if inputs.license else NOT_STATED}

## Training data

{inputs.training_data or NOT_STATED}{"" if not inputs.datasets else " (Hub datasets: " + ", ".join(f"`{d}`" for d in inputs.datasets) + ")"}

## Evaluation

{_metrics_table(inputs)}

## Intended use

{_intended_use(inputs)}

## Limitations

{_limits(inputs)}

## How to call the endpoints

{_endpoints_section(inputs)}

## Use from the Hub

{_hub_usage(inputs)}

## Provenance

{_provenance(inputs)}
"""
    content = f"---\n{card_data(inputs).to_yaml()}\n---\n{body}"
    return str(ModelCard(content, ignore_metadata_errors=False).content)
