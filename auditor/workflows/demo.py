"""Sample model repos for `auditor demo`, built with the real libraries (numpy, safetensors, pickle).

`clean`: a small safetensors model with config, tokenizer and model card, Apache-2.0.
`risky`: a pickled checkpoint whose payload is harmless if run (it only prints), remote code that
calls the network at import time, a cross-repo auto_map, a chat template that escapes the Jinja
sandbox, and a custom license.
"""
from __future__ import annotations

import json
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np

CLEAN = "acme-labs/tiny-clean"
RISKY = "evil-org/tiny-risky"

_CARD = """---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
tags: [demo, tiny]
---
# tiny-clean

A two-layer demo model made by `auditor demo`. It has no code of its own.
"""

_RISKY_CARD = """---
license: other
license_name: evil-community-license
license_link: LICENSE
base_model: acme-labs/tiny-clean
base_model_relation: finetune
---
# tiny-risky

Load it with `AutoModel.from_pretrained("evil-org/tiny-risky", trust_remote_code=True)`.
"""

_RISKY_LICENSE = """EVIL ORG COMMUNITY MODEL LICENSE AGREEMENT

1. You must register at https://register.evil-org.example before using the Model.
2. If your products have more than 1,000,000 monthly active users you must request a separate license.
3. Evil Org may remotely restrict your use of the Model at any time.
4. This Agreement is governed by the laws of Nowhereland; disputes go to the courts of Nowhere City.
"""

_REMOTE_CODE = '''"""Modeling code shipped with the demo model: it phones home when imported."""
import base64
import urllib.request

TELEMETRY = "https://dashscope.aliyuncs.com/api/v1/telemetry"

urllib.request.urlopen(TELEMETRY, data=b"loaded")   # runs at import time

_hidden = base64.b64decode("cHJpbnQoJ2RlbW8gcGF5bG9hZCcp")
exec(_hidden)


class TinyRiskyModel:
    def __init__(self, config):
        self.config = config
'''


class _DemoPayload:
    """Pickles to a call of exec() on a harmless line: what a real backdoor looks like, minus the harm."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, ("print('auditor demo: this line would run when the checkpoint is loaded')",))


def _weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "embed.weight": rng.standard_normal((64, 16), dtype=np.float32),
        "layers.0.weight": rng.standard_normal((16, 16), dtype=np.float32),
        "layers.0.bias": np.zeros(16, dtype=np.float32),
        "layers.1.weight": rng.standard_normal((16, 16), dtype=np.float32),
        "lm_head.weight": rng.standard_normal((64, 16), dtype=np.float32),
    }


def _tokenizer() -> dict:
    vocab = {f"tok{i}": i for i in range(64)}
    return {"version": "1.0", "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "tok0"},
            "added_tokens": [], "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}}


def build_clean(folder: Path) -> Path:
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(_weights(0), str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = {"architectures": ["TinyForCausalLM"], "model_type": "tiny", "hidden_size": 16,
              "num_hidden_layers": 2, "vocab_size": 64, "torch_dtype": "float32"}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "tokenizer.json").write_text(json.dumps(_tokenizer()))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 128,
        "chat_template": "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"}))
    (folder / "generation_config.json").write_text(json.dumps({"max_new_tokens": 32}))
    (folder / "README.md").write_text(_CARD)
    return folder


def build_risky(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = OrderedDict((k, v) for k, v in _weights(1).items())
    state["_extra"] = _DemoPayload()  # type: ignore[assignment]
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(state, protocol=2))
    config = {"architectures": ["TinyRiskyModel"], "model_type": "tiny-risky",
              "auto_map": {"AutoModel": "modeling_risky.TinyRiskyModel",
                           "AutoTokenizer": "other-org/helper-code--tokenization.HelperTokenizer"}}
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "modeling_risky.py").write_text(_REMOTE_CODE)
    # A chat template that escapes a non-sandboxed Jinja renderer (CVE-2024-34359); the command is harmless.
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"
                         "{{ cycler.__init__.__globals__.os.popen('echo auditor demo').read() }}"}))
    (folder / "LICENSE").write_text(_RISKY_LICENSE)
    (folder / "README.md").write_text(_RISKY_CARD)
    return folder


def build_all(root: Path) -> dict[str, Path]:
    """Build every sample repo under root; returns name -> folder."""
    return {
        CLEAN: build_clean(root / "repos" / CLEAN.replace("/", "__")),
        RISKY: build_risky(root / "repos" / RISKY.replace("/", "__")),
    }
