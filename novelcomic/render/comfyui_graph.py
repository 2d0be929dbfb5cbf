"""ComfyUI workflows in API format: loading them, where novelcomic writes its values into them
(bindings), and checking them against a server's ``/object_info``. No network here.

A workflow is ComfyUI's "Export (API)" JSON: ``{node_id: {"class_type": …, "inputs": {…},
"_meta": {"title": …}}}``; an input is a value or a link ``[source_node_id, output_index]``.

Bindings (``bind`` in project.yaml) name ``"NODE_ID.INPUT"`` targets (or lists of them) for the
values novelcomic writes: ``prompt``, ``negative``, ``seed``, ``width``, ``height``, ``steps``,
``references`` (LoadImage inputs, filled with the shot's reference images in order), ``image`` and
``mask`` (the edit workflow's LoadImage inputs) and ``output`` (the node whose images are the
result). Without ``bind``, nodes titled ``nc:prompt``, ``nc:negative``, ``nc:seed``, ``nc:width``,
``nc:height`` (or ``nc:size`` for both), ``nc:steps``, ``nc:ref1``…, ``nc:image``, ``nc:mask`` and
``nc:output`` are used; a title may hold several keys (``nc:width,height``).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novelcomic.errors import NovelcomicError

OPTIONS = "stages.render.options."
BUNDLED = ("sdxl-ipadapter", "flux2-klein-refs", "qwen-image-edit-refs")
VALUE_KEYS = ("prompt", "negative", "seed", "width", "height", "steps", "image", "mask")
BIND_KEYS = (*VALUE_KEYS, "references", "output")
TITLE_PREFIX = "nc:"
# the widget inputs a titled node gets for each key, first present wins (prompts: every one present)
TITLE_INPUTS: dict[str, tuple[str, ...]] = {
    "prompt": ("text", "prompt", "string", "value", "text_g", "text_l", "clip_l", "t5xxl"),
    "negative": ("text", "prompt", "string", "value", "text_g", "text_l", "clip_l", "t5xxl"),
    "seed": ("seed", "noise_seed", "value"),
    "width": ("width", "value"),
    "height": ("height", "value"),
    "steps": ("steps", "value"),
    "image": ("image",),
    "mask": ("image",),
    "ref": ("image",),
}
WRITE_ALL = frozenset({"prompt", "negative"})
# what type of input each key may be written to
EXPECTED = {"prompt": ("STRING",), "negative": ("STRING",), "seed": ("INT",), "width": ("INT",), "height": ("INT",),
            "steps": ("INT",)}
LOAD_IMAGE_CLASSES = frozenset({"LoadImage", "LoadImageMask", "LoadImageOutput"})
OUTPUT_CLASSES = ("SaveImage", "PreviewImage")

# Custom-node packs that provide well-known node classes: (pattern on the class name, pack)
PACKS: tuple[tuple[str, str], ...] = (
    (r"^IPAdapter|^PrepImageForClipVision", "ComfyUI_IPAdapter_plus (github.com/cubiq/ComfyUI_IPAdapter_plus)"),
    (r"^PulidFlux|FluxPulid", "ComfyUI-PuLID-Flux (github.com/balazik/ComfyUI-PuLID-Flux)"),
    (r"^ApplyPulid|^Pulid", "PuLID_ComfyUI (github.com/cubiq/PuLID_ComfyUI)"),
    (r"InstantID", "ComfyUI_InstantID (github.com/cubiq/ComfyUI_InstantID)"),
    (r"^UltimateSDUpscale", "ComfyUI_UltimateSDUpscale (github.com/ssitu/ComfyUI_UltimateSDUpscale)"),
    (r"GGUF$|GGUF", "ComfyUI-GGUF (github.com/city96/ComfyUI-GGUF)"),
    (r"^ACN_", "ComfyUI-Advanced-ControlNet (github.com/Kosinkadink/ComfyUI-Advanced-ControlNet)"),
    (r"^ADE_", "ComfyUI-AnimateDiff-Evolved (github.com/Kosinkadink/ComfyUI-AnimateDiff-Evolved)"),
    (r"^VHS_", "ComfyUI-VideoHelperSuite (github.com/Kosinkadink/ComfyUI-VideoHelperSuite)"),
    (r"^UltralyticsDetectorProvider|^SAMLoader \(Impact\)", "ComfyUI-Impact-Subpack (github.com/ltdrdata/ComfyUI-Impact-Subpack)"),
    (r"FaceDetailer|Impact|^DetailerFor|^SEGS", "ComfyUI-Impact-Pack (github.com/ltdrdata/ComfyUI-Impact-Pack)"),
    (r"Preprocessor$|^AIO_Preprocessor", "comfyui_controlnet_aux (github.com/Fannovel16/comfyui_controlnet_aux)"),
    (r"^easy ", "ComfyUI-Easy-Use (github.com/yolain/ComfyUI-Easy-Use)"),
    (r"Efficient", "efficiency-nodes-comfyui (github.com/jags111/efficiency-nodes-comfyui)"),
    (r"^CR ", "ComfyUI_Comfyroll_CustomNodes (github.com/Suzie1/ComfyUI_Comfyroll_CustomNodes)"),
    (r"^LayerMask: |^LayerStyle: |^LayerUtility: ", "ComfyUI_LayerStyle (github.com/chflame163/ComfyUI_LayerStyle)"),
    (r"Florence2", "ComfyUI-Florence2 (github.com/kijai/ComfyUI-Florence2)"),
    (r"_lrzjason$", "Comfyui-QwenEditUtils (github.com/lrzjason/Comfyui-QwenEditUtils)"),
    (r"^Image Rembg|^WAS_|^Image Resize$", "was-node-suite-comfyui (github.com/WASasquatch/was-node-suite-comfyui)"),
    (r"\(rgthree\)$", "rgthree-comfy (github.com/rgthree/rgthree-comfy)"),
    (r"\|pysssss$", "ComfyUI-Custom-Scripts (github.com/pythongosssss/ComfyUI-Custom-Scripts)"),
)
# Core nodes of recent ComfyUI versions: an older server lacks them
CORE_RECENT = re.compile(r"Flux2|QwenImage|ReferenceLatent|^EmptySD3LatentImage$|^ModelSamplingAuraFlow$|^ImageScaleToTotalPixels$")


def pack_hint(class_type: str) -> str:
    """Which custom-node pack probably provides ``class_type`` (or that ComfyUI needs updating)."""
    if CORE_RECENT.search(class_type):
        return f"{class_type} is a core node of recent ComfyUI versions: update ComfyUI"
    for pattern, pack in PACKS:
        if re.search(pattern, class_type):
            return f"install the custom-node pack {pack}"
    return f"install a custom node pack that provides {class_type} (ComfyUI-Manager finds it by the class name)"


# --------------------------------------------------------------------------- bindings


@dataclass(frozen=True)
class Target:
    """One input of one node: where a value is written."""

    node: str
    input: str

    def __str__(self) -> str:
        return f"{self.node}.{self.input}"


@dataclass(frozen=True)
class Bindings:
    """Where each value goes, and the field of project.yaml (or the workflow) that said so."""

    values: dict[str, tuple[Target, ...]]  # VALUE_KEYS → targets
    references: tuple[Target, ...]
    output: str
    fields: dict[str, str] = field(default_factory=dict)  # key ("references.1") → field for messages


@dataclass(frozen=True)
class Workflow:
    """A loaded workflow with its bindings. ``option``: workflow | workflow_no_refs | edit_workflow."""

    option: str
    source: str  # the file (as project.yaml names it) or "bundled template NAME"
    graph: dict[str, dict[str, Any]]
    bindings: Bindings

    @property
    def field(self) -> str:
        return OPTIONS + self.option

    def class_of(self, node: str) -> str:
        return str(self.graph.get(node, {}).get("class_type", "?"))

    def title_of(self, node: str) -> str:
        return str((self.graph.get(node, {}).get("_meta") or {}).get("title") or "")

    def fill(self, values: dict[str, Any], references: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """A copy of the graph with ``values`` (by key) and the uploaded reference names written in."""
        graph = copy.deepcopy(self.graph)
        for key, value in values.items():
            if value is None:
                continue
            for t in self.bindings.values.get(key, ()):
                graph[t.node].setdefault("inputs", {})[t.input] = value
        for t, name in zip(self.bindings.references, references or []):
            graph[t.node].setdefault("inputs", {})[t.input] = name
        return graph


def load_graph(text: str, source: str, field_name: str) -> dict[str, dict[str, Any]]:
    """An API-format workflow from JSON text, or a one-line error naming ``source``."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise NovelcomicError(f"{source} is not JSON: {exc}", field=field_name) from None
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data:
        raise NovelcomicError(f"{source} is ComfyUI's UI format: export it in API format (Workflow → Export (API), "
                              f"or Save (API Format) with dev mode on)", field=field_name)
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and all(isinstance(v, dict) for v in data["prompt"].values()):
        data = data["prompt"]  # a saved /prompt body
    if not isinstance(data, dict) or not data:
        raise NovelcomicError(f"{source} holds no workflow (an API-format export is an object of nodes)", field=field_name)
    for node_id, node in data.items():
        if not isinstance(node, dict) or not isinstance(node.get("class_type"), str):
            raise NovelcomicError(f"{source}: node {node_id} has no class_type (is it an API-format export?)", field=field_name)
        if not isinstance(node.get("inputs", {}), dict):
            raise NovelcomicError(f"{source}: node {node_id} has inputs that are not an object", field=field_name)
    return {str(k): v for k, v in data.items()}


def bundled_text(name: str) -> str:
    from importlib.resources import files

    return (files("novelcomic") / "comfyui_workflows" / f"{name}.json").read_text(encoding="utf-8")


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)) and isinstance(value[1], int)


def parse_target(value: Any, graph: dict[str, dict[str, Any]], source: str, field_name: str) -> Target:
    if not isinstance(value, str) or "." not in value:
        raise NovelcomicError(f"{value!r} must be \"NODE_ID.INPUT\" (e.g. \"3.seed\")", field=field_name)
    node, _, name = value.rpartition(".")
    node, name = node.strip(), name.strip()
    if node not in graph:
        raise NovelcomicError(f"{value!r}: {source} has no node {node} (nodes: {_some(graph)})", field=field_name)
    current = graph[node].get("inputs", {}).get(name)
    if is_link(current):
        raise NovelcomicError(f"{value!r}: input {name} of node {node} ({graph[node]['class_type']}) is connected to node "
                              f"{current[0]}: bind a widget input (or the node that feeds it)", field=field_name)
    return Target(node, name)


def _some(graph: dict[str, Any], n: int = 12) -> str:
    ids = list(graph)
    return ", ".join(ids[:n]) + (f", … ({len(ids)} in all)" if len(ids) > n else "")


def bindings_from_map(bind: Any, graph: dict[str, dict[str, Any]], source: str, base: str) -> Bindings:
    """``bind`` from project.yaml (``base``: its field, e.g. ``stages.render.options.bind``)."""
    if not isinstance(bind, dict):
        raise NovelcomicError(f"bind {bind!r} must be a map of key: \"NODE_ID.INPUT\"", field=base)
    unknown = sorted(set(bind) - set(BIND_KEYS))
    if unknown:
        raise NovelcomicError(f"unknown binding {unknown[0]!r} (known: {', '.join(BIND_KEYS)})", field=f"{base}.{unknown[0]}")
    values: dict[str, tuple[Target, ...]] = {}
    fields: dict[str, str] = {}
    for key in VALUE_KEYS:
        if key not in bind or bind[key] is None:
            continue
        raw = bind[key] if isinstance(bind[key], list) else [bind[key]]
        targets = []
        for i, item in enumerate(raw):
            where = f"{base}.{key}.{i}" if isinstance(bind[key], list) else f"{base}.{key}"
            targets.append(parse_target(item, graph, source, where))
            fields[f"{key}.{len(targets) - 1}"] = where
        values[key] = tuple(targets)
    refs: list[Target] = []
    raw_refs = bind.get("references") or []
    for i, item in enumerate(raw_refs if isinstance(raw_refs, list) else [raw_refs]):
        where = f"{base}.references.{i}" if isinstance(raw_refs, list) else f"{base}.references"
        refs.append(parse_target(item, graph, source, where))
        fields[f"references.{i}"] = where
    output = bind.get("output")
    if output is None:
        output = default_output(graph, source, base)
    else:
        output = str(output)
        if output not in graph:
            raise NovelcomicError(f"{output!r}: {source} has no node {output} (nodes: {_some(graph)})", field=f"{base}.output")
        fields["output"] = f"{base}.output"
    return Bindings(values, tuple(refs), output, fields)


def bindings_from_titles(graph: dict[str, dict[str, Any]], source: str, field_name: str) -> Bindings:
    """Bindings from the nodes' titles (``_meta.title``: ``nc:prompt``, ``nc:ref1``, …)."""
    values: dict[str, list[Target]] = {}
    refs: dict[int, Target] = {}
    output: str | None = None
    for node_id, node in graph.items():
        title = str((node.get("_meta") or {}).get("title") or "").strip()
        if not title.lower().startswith(TITLE_PREFIX):
            continue
        keys = [k.strip().lower() for k in re.split(r"[,\s]+", title[len(TITLE_PREFIX):]) if k.strip()]
        keys = [k[len(TITLE_PREFIX):] if k.startswith(TITLE_PREFIX) else k for k in keys]
        if "size" in keys:
            keys = [k for k in keys if k != "size"] + ["width", "height"]
        inputs = node.get("inputs", {})
        for key in keys:
            m = re.fullmatch(r"ref(\d+)", key)
            if key == "output":
                output = node_id
                continue
            if m is None and key not in VALUE_KEYS:
                raise NovelcomicError(f"{source}: node {node_id} is titled {title!r}, but {key!r} is no binding "
                                      f"(titles: nc:prompt, nc:negative, nc:seed, nc:width, nc:height, nc:size, nc:steps, "
                                      f"nc:ref1…, nc:image, nc:mask, nc:output)", field=field_name)
            names = TITLE_INPUTS["ref" if m else key]
            free = [n for n in names if n in inputs and not is_link(inputs[n])]
            if not free:
                raise NovelcomicError(f"{source}: node {node_id} ({node['class_type']}) is titled {title!r} but has no "
                                      f"{' or '.join(names)} widget input to write to", field=field_name)
            chosen = free if key in WRITE_ALL else free[:1]
            if m:
                n = int(m.group(1))
                if n in refs:
                    raise NovelcomicError(f"{source}: two nodes are titled nc:ref{n} ({refs[n].node} and {node_id})", field=field_name)
                refs[n] = Target(node_id, chosen[0])
            else:
                values.setdefault(key, []).extend(Target(node_id, c) for c in chosen)
    if output is None:
        output = default_output(graph, source, field_name)
    return Bindings({k: tuple(v) for k, v in values.items()}, tuple(refs[n] for n in sorted(refs)), output, {})


def default_output(graph: dict[str, dict[str, Any]], source: str, field_name: str) -> str:
    savers = [n for n, node in graph.items() if node.get("class_type") in OUTPUT_CLASSES]
    if len(savers) == 1:
        return savers[0]
    what = "no SaveImage or PreviewImage node" if not savers else f"several image outputs ({', '.join(savers)})"
    raise NovelcomicError(f"{source} has {what}: say which node's images are the result with bind.output, or title "
                          f"that node nc:output", field=field_name)


def load_workflow(option: str, value: Any, bind: Any, text: str, source: str, *, needs: tuple[str, ...] = ("prompt",),
                  bind_field: str = "bind") -> Workflow:
    """A workflow with its bindings (from ``bind`` when given, else from the nodes' titles)."""
    field_name = OPTIONS + option
    graph = load_graph(text, source, field_name)
    if bind is not None:
        bindings = bindings_from_map(bind, graph, source, OPTIONS + bind_field)
    else:
        bindings = bindings_from_titles(graph, source, field_name)
    for key in needs:
        if not bindings.values.get(key):
            how = (f"set {bind_field}.{key}: \"NODE_ID.INPUT\"" if bind is not None
                   else f"title that node nc:{key} in ComfyUI (or set {bind_field}.{key})")
            raise NovelcomicError(f"{source}: novelcomic does not know where to write the {key}: {how}",
                                  field=OPTIONS + (f"{bind_field}.{key}" if bind is not None else option))
    return Workflow(option, source, graph, bindings)


# --------------------------------------------------------------------------- /object_info


@dataclass(frozen=True)
class InputSpec:
    kind: str  # "INT", "STRING", "IMAGE", "COMBO", … ("COMBO" for a list of choices)
    options: dict[str, Any]
    choices: tuple[Any, ...] = ()


def input_spec(info: dict[str, Any], class_type: str, name: str) -> InputSpec | None:
    """What ``/object_info`` says of input ``name`` of ``class_type`` (required, optional or hidden)."""
    spec_all = (info.get(class_type) or {}).get("input") or {}
    for group in ("required", "optional"):
        spec = (spec_all.get(group) or {}).get(name)
        if spec is not None:
            return _spec(spec)
    return None


def _spec(spec: Any) -> InputSpec:
    if not isinstance(spec, (list, tuple)) or not spec:
        return InputSpec("*", {})
    head, opts = spec[0], spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(head, list):
        return InputSpec("COMBO", opts, tuple(head))
    if head == "COMBO":
        return InputSpec("COMBO", opts, tuple(opts.get("options") or ()))
    return InputSpec(str(head), opts)


def input_names(info: dict[str, Any], class_type: str) -> list[str]:
    spec_all = (info.get(class_type) or {}).get("input") or {}
    return [n for g in ("required", "optional") for n in (spec_all.get(g) or {})]


def uploaded_inputs(info: dict[str, Any]) -> set[str]:
    """The files already in the server's input folder (LoadImage's choices)."""
    spec = input_spec(info, "LoadImage", "image")
    return {str(c) for c in spec.choices} if spec is not None else set()


def check_against(workflow: Workflow, info: dict[str, Any], url: str) -> None:
    """Refuse, in one line naming the project.yaml field, a workflow the server cannot run: a node
    class it lacks (with the custom-node pack that provides it), a bound input its class does not
    have, a value of the wrong type, or an output node that saves no image."""
    missing = {}
    for node_id, node in workflow.graph.items():
        if node["class_type"] not in info:
            missing.setdefault(node["class_type"], node_id)
    if missing:
        cls, node_id = next(iter(missing.items()))
        more = f" (also missing: {', '.join(list(missing)[1:4])})" if len(missing) > 1 else ""
        raise NovelcomicError(f"{workflow.source}: node {node_id} uses {cls}, which the ComfyUI server at {url} does not "
                              f"have: {pack_hint(cls)}{more}", field=workflow.field)
    b = workflow.bindings
    bound = {(t.node, t.input) for targets in b.values.values() for t in targets} | {(t.node, t.input) for t in b.references}
    for node_id, node in workflow.graph.items():
        for name, value in (node.get("inputs") or {}).items():
            spec = input_spec(info, node["class_type"], name)
            if (node_id, name) in bound or spec is None or spec.kind != "COMBO" or not spec.choices or is_link(value):
                continue
            if value not in spec.choices:
                what = "file" if isinstance(value, str) and "." in value else "value"
                shown = ", ".join(str(c) for c in spec.choices[:8]) + (" …" if len(spec.choices) > 8 else "")
                raise NovelcomicError(f"{workflow.source}: node {node_id} ({node['class_type']}) input {name}: the {what} "
                                      f"{value!r} is not on the ComfyUI server at {url} (it has: {shown})", field=workflow.field)

    def where(key: str, i: int) -> str:
        return b.fields.get(f"{key}.{i}", workflow.field)

    groups: list[tuple[str, tuple[Target, ...]]] = [(k, v) for k, v in b.values.items()] + [("references", b.references)]
    for key, targets in groups:
        for i, t in enumerate(targets):
            cls = workflow.class_of(t.node)
            spec = input_spec(info, cls, t.input)
            label = f"references[{i + 1}]" if key == "references" else key
            if spec is None:
                raise NovelcomicError(f"{t} ({label}): {cls} has no input {t.input!r} (its inputs: "
                                      f"{', '.join(input_names(info, cls)) or 'none'})", field=where(key, i))
            if key in ("references", "image", "mask"):
                if not (cls in LOAD_IMAGE_CLASSES or (spec.kind == "COMBO" and spec.options.get("image_upload"))):
                    raise NovelcomicError(f"{t} ({label}) is a {spec.kind} input of {cls}, not a file input of a LoadImage "
                                          f"node: bind the LoadImage node that feeds it", field=where(key, i))
            elif spec.kind not in EXPECTED[key] and spec.kind != "*":
                raise NovelcomicError(f"{t} ({label}) is a {spec.kind} input of {cls}; the {key} is "
                                      f"{' or '.join(EXPECTED[key])}", field=where(key, i))
    out_cls = workflow.class_of(b.output)
    if not (info.get(out_cls) or {}).get("output_node"):
        raise NovelcomicError(f"output node {b.output} ({out_cls}) saves no image: bind a SaveImage or PreviewImage node",
                              field=b.fields.get("output", workflow.field))


# --------------------------------------------------------------------------- server answers


def describe_refusal(body: Any, workflow: Workflow | None) -> str:
    """A ``/prompt`` refusal (HTTP 400, or node_errors in a 200) as one clause: which node, its
    class and input, and why; an unknown class names the pack that provides it."""
    if not isinstance(body, dict):
        return str(body)[:300]
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    node_errors = body.get("node_errors") if isinstance(body.get("node_errors"), dict) else {}
    if error.get("type") == "missing_node_type":
        extra = error.get("extra_info") or {}
        cls, node = extra.get("class_type"), extra.get("node_id")
        if cls:
            return f"node {node} uses {cls}, which the server does not have: {pack_hint(str(cls))}"
        return f"{error.get('message', 'a node has no class_type')}"
    if node_errors:
        node_id, entry = next(iter(node_errors.items()))
        cls = (entry or {}).get("class_type") or (workflow.class_of(str(node_id)) if workflow else "?")
        errs = (entry or {}).get("errors") or [{}]
        e = errs[0] if isinstance(errs[0], dict) else {}
        name = (e.get("extra_info") or {}).get("input_name")
        inp = f" input {name}" if name else ""
        details = f": {e['details']}" if e.get("details") else ""
        more = sum(len((v or {}).get("errors") or []) for v in node_errors.values()) - 1
        tail = f" (and {more} more error{'s' if more > 1 else ''})" if more > 0 else ""
        return f"node {node_id} ({cls}){inp}: {e.get('message') or e.get('type') or 'invalid'}{details}{tail}"
    if error:
        details = f": {error['details']}" if error.get("details") else ""
        return f"{error.get('message') or error.get('type')}{details}"
    return json.dumps(body)[:300]


def describe_execution_error(data: dict[str, Any]) -> str:
    """An ``execution_error`` message (websocket or history) as one clause."""
    node, cls = data.get("node_id"), data.get("node_type")
    kind, message = data.get("exception_type") or "error", " ".join(str(data.get("exception_message") or "").split())
    return f"node {node} ({cls}) failed: {kind}: {message[:300]}"


def neutral_png() -> bytes:
    """A small mid-grey image for reference slots a shot cannot fill."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buf, format="PNG")
    return buf.getvalue()


def read_text(path: Path, source: str, field_name: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NovelcomicError(f"workflow file {source} not found", field=field_name) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NovelcomicError(f"cannot read workflow file {source}: {getattr(exc, 'strerror', None) or exc}",
                              field=field_name) from None
