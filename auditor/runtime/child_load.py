"""Runs INSIDE the sandbox: load the model the way its users would, under the watch of child_watch.

request: {"model": "/model", "files": [relative paths], "steps": [{"kind": ..., "path": ...}],
          "full_load_max_bytes": N, "requirements": [module names]}
Lines sent back: {"type": "event"|"outcome"|"truncated"} from the watch, {"type": "step", ...} per step,
{"type": "shrunk", ...} when a big config was shrunk, and {"type": "done"} at the end.
"""
import importlib.metadata
import os
import platform
import resource
import sys
import traceback

import _auditor_watch as watch_module

LOADER_DISTRIBUTIONS = ("transformers", "torch", "tokenizers", "safetensors", "huggingface-hub", "jinja2", "joblib",
                        "numpy", "gguf", "keras", "h5py", "accelerate", "sentencepiece", "tiktoken", "protobuf",
                        "scikit-learn", "scipy")
MESSAGES = [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "Hello"}]
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "num_decoder_layers", "num_encoder_layers",
              "encoder_layers", "decoder_layers")
SIZE_KEYS = {"hidden_size": 64, "n_embd": 64, "d_model": 64, "intermediate_size": 128, "ffn_dim": 128, "n_inner": 128,
             "d_ff": 128, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128, "moe_intermediate_size": 64,
             "shared_expert_intermediate_size": 64, "head_dim": 16, "kv_lora_rank": 16, "q_lora_rank": 32,
             "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 16, "num_attention_heads": 4, "n_head": 4,
             "encoder_attention_heads": 4, "decoder_attention_heads": 4}
CAP_KEYS = {"num_experts": 4, "num_local_experts": 4, "n_routed_experts": 4, "num_experts_per_tok": 2,
            "n_shared_experts": 1, "first_k_dense_replace": 0}


def main(request, emit):
    platform.uname().__dict__.setdefault("processor", "")   # no `uname -p` spawn of the probe's own
    model_root = request["model"]
    watch = watch_module.Watch(emit, model_root, request["files"], expected_modules(request))
    watch.install()
    sys.path.insert(0, model_root)   # as a user running the model's own scripts from its folder would
    for step in request["steps"]:
        run_step(watch, emit, step, request)
    usage = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    emit({"type": "done", "peak_rss_mb": round(usage / 1024, 1)})


def expected_modules(request) -> set:
    """The standard library, the loaders and everything they declare (extras included), the model's own
    modules and the names its requirements.txt lists."""
    names = set(sys.stdlib_module_names) | set(sys.builtin_module_names) | set(sys.modules)
    names |= {"transformers_modules", "_auditor_watch", "sandbox_payload", "__main__"}
    names |= set(request.get("requirements") or ())
    for path in request["files"]:
        top = path.split("/", 1)[0]
        names.add(top[:-3] if top.endswith(".py") else top)
    modules_of: dict = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            modules_of.setdefault(_normal(dist), set()).add(module)
    todo, seen = [(_normal(d), True) for d in LOADER_DISTRIBUTIONS], set()
    while todo:
        dist, with_extras = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        names |= modules_of.get(dist, set())
        try:
            requires = importlib.metadata.requires(dist) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" in requirement and not with_extras:
                continue
            todo.append((_normal(_requirement_name(requirement)), False))
    return names


def _requirement_name(requirement: str) -> str:
    name = requirement.split(";", 1)[0].strip()
    for stop in "[<>=!~ (":
        name = name.split(stop, 1)[0]
    return name


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def run_step(watch, emit, step, request) -> None:
    watch.step = f"{step['kind']} {step.get('path', '')}".strip()
    result = {"type": "step", "kind": step["kind"], "path": step.get("path", ""), "status": "ok", "parts": []}
    if step.get("too_large"):
        result.update(status="skipped", error=f"not loaded: {step.get('size')} bytes is over the runtime check's "
                                                f"size limit (the static analysis covers it)")
        emit(result)
        return
    emit({"type": "start", "kind": step["kind"], "path": step.get("path", "")})
    try:
        STEPS[step["kind"]](step, request, result, emit)
    except BaseException as exc:   # noqa: BLE001 - SystemExit from model code is a failed load too
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["status"] = "failed"
        result["error"] = f"{type(exc).__name__}: {str(exc)[:400]}"
        result["where"] = _model_frame(exc, request["model"])
    watch.step = ""
    emit(result)


def _model_frame(exc: BaseException, model_root: str) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if frame.filename.startswith(model_root) or "/transformers_modules/" in frame.filename:
            return f"{os.path.basename(frame.filename)}:{frame.lineno}"
    return f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""


# --- transformers ----------------------------------------------------------------------------

def load_transformers(step, request, result, emit) -> None:
    import torch
    import transformers
    path = request["model"]
    config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=True)
    result["parts"].append("config")
    auto = pick_auto_class(transformers, config)
    if step.get("weight_bytes", 0) > request["full_load_max_bytes"]:
        shrunk = shrink(config)
        emit({"type": "shrunk", "changes": shrunk})
        model = auto.from_config(config, trust_remote_code=True)
        result["parts"].append(f"{auto.__name__}.from_config (shrunk config, random weights)")
    else:
        model = auto.from_pretrained(path, trust_remote_code=True)
        result["parts"].append(f"{auto.__name__}.from_pretrained")
    ids = [[1, 2, 3, 4]]
    if step.get("tokenizer"):
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=True)
        result["parts"].append("tokenizer")
        text: object = "Hello"
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
            result["parts"].append("chat template")
        ids = [list(tokenizer(text)["input_ids"])[:32] or [1]]
    vocab = int(getattr(model.config, "vocab_size", 0) or getattr(getattr(model.config, "text_config", None),
                                                                   "vocab_size", 0) or 32)
    input_ids = torch.tensor([[i % vocab for i in ids[0]]])
    model.eval()
    with torch.no_grad():
        if getattr(model.config, "is_encoder_decoder", False):
            model(input_ids=input_ids, decoder_input_ids=input_ids[:, :1])
        else:
            model(input_ids=input_ids)
    result["parts"].append("forward")


def pick_auto_class(transformers, config):
    auto_map = getattr(config, "auto_map", None) or {}
    order = ("AutoModelForCausalLM", "AutoModelForSeq2SeqLM", "AutoModelForMaskedLM",
             "AutoModelForSequenceClassification", "AutoModel")
    for name in order:
        if name in auto_map:
            return getattr(transformers, name)
    for name in order:
        cls = getattr(transformers, name)
        if type(config) in cls._model_mapping:
            return cls
    return transformers.AutoModel


def shrink(config, prefix: str = "") -> dict:
    """Shrink a config in place so the model's own __init__ and forward run on a tiny random copy."""
    changes: dict = {}
    layers = _shrink_layers(config, prefix, changes)
    for key, small in {**SIZE_KEYS, **CAP_KEYS}.items():
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > small:
            changes[prefix + key] = [value, small]
            setattr(config, key, small)
    _shrink_kv_heads(config, prefix, changes)
    if layers:   # per-layer lists (layer_types, mlp_only_layers...) follow the layer count
        for key, value in list(vars(config).items()):
            if isinstance(value, list) and len(value) == layers:
                changes[prefix + key] = [f"{layers} items", "1 item"]
                setattr(config, key, value[:1])
    for key, value in list(vars(config).items()):
        if hasattr(value, "to_dict") and hasattr(value, "model_type") and value is not config:
            changes.update(shrink(value, f"{prefix}{key}."))
    return changes


def _shrink_layers(config, prefix: str, changes: dict) -> int:
    layers = 0
    for key in LAYER_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 1:
            layers = layers or value
            changes[prefix + key] = [value, 1]
            setattr(config, key, 1)
    return layers


def _shrink_kv_heads(config, prefix: str, changes: dict) -> None:
    heads, kv = getattr(config, "num_attention_heads", None), getattr(config, "num_key_value_heads", None)
    if isinstance(kv, int) and isinstance(heads, int) and prefix + "num_attention_heads" in changes:
        original_heads = changes[prefix + "num_attention_heads"][0]
        new_kv = heads if kv >= original_heads else 1 if kv == 1 else max(1, heads // 2)   # MHA, MQA, GQA
        if new_kv != kv:
            changes[prefix + "num_key_value_heads"] = [kv, new_kv]
            config.num_key_value_heads = new_kv


# --- pickles, joblib, keras, GGUF ------------------------------------------------------------

def load_torch(step, request, result, emit) -> None:
    import torch
    torch.load(os.path.join(request["model"], step["path"]), map_location="cpu", weights_only=False)
    result["parts"].append("torch.load(weights_only=False)")


def load_joblib(step, request, result, emit) -> None:
    import joblib
    joblib.load(os.path.join(request["model"], step["path"]))
    result["parts"].append("joblib.load")


def load_keras(step, request, result, emit) -> None:
    try:
        import keras
    except ImportError:
        result["status"] = "unavailable"
        result["error"] = "keras is not installed in the auditor's Python"
        return
    keras.saving.load_model(os.path.join(request["model"], step["path"]))
    result["parts"].append("keras.saving.load_model")


def load_gguf(step, request, result, emit) -> None:
    """Render the GGUF chat template as the Python serving stacks do (jinja2's immutable sandbox)."""
    from gguf import GGUFReader
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    reader = GGUFReader(os.path.join(request["model"], step["path"]))
    result["parts"].append("GGUFReader")
    field = reader.fields.get("tokenizer.chat_template")
    if field is None:
        return
    template = bytes(field.parts[field.data[0]]).decode("utf-8", "replace")
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message):
        raise ValueError(message)

    env.globals["raise_exception"] = raise_exception
    env.from_string(template).render(messages=MESSAGES, add_generation_prompt=True, bos_token="<s>", eos_token="</s>")
    result["parts"].append("chat template")


STEPS = {"transformers": load_transformers, "torch": load_torch, "joblib": load_joblib, "keras": load_keras,
         "gguf": load_gguf}
