"""The Open Inference Protocol (KServe V2) over HTTP with requests and numpy,
written from the protocol, as any KServe/Triton client would send it:
JSON tensors, then the binary tensor data extension.
    S2S_URL=http://localhost:8080 python3 examples/python/v2_infer.py
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import requests

from png_gray import read_png_gray

URL = os.environ.get("S2S_URL", "http://localhost:8080")
MODEL = os.environ.get("S2S_MODEL", "fashion-mnist")
HEADERS = {"authorization": f"Bearer {os.environ['S2S_API_KEY']}"} if os.environ.get("S2S_API_KEY") else {}
IMAGES = Path(__file__).resolve().parent.parent / "images"
NAMES = ["shirt.png", "sneaker.png", "bag.png"]


def post(body, headers=None):
    r = requests.post(f"{URL}/v2/models/{MODEL}/infer", data=body, headers={**HEADERS, **(headers or {})}, timeout=30)
    if r.status_code != 200:
        sys.exit(f"{r.status_code}: {r.json()['error']}")
    return r


def main():
    meta = requests.get(f"{URL}/v2/models/{MODEL}", headers=HEADERS, timeout=30).json()
    served = requests.get(f"{URL}/v1/models", headers=HEADERS, timeout=30).json()["models"]
    labels = next(m["labels"] for m in served if m["name"] == MODEL)
    print("outputs:", ", ".join(f"{o['name']} {o['datatype']} {o['shape']}" for o in meta["outputs"]))
    batch = np.array([read_png_gray(IMAGES / n) for n in NAMES], dtype=np.uint8).reshape(len(NAMES), 1, 28, 28)

    # 1. JSON: UINT8 data, every default output back as JSON
    request = {"id": "json-1", "inputs": [{"name": "input", "datatype": "UINT8", "shape": list(batch.shape), "data": batch.flatten().tolist()}]}
    out = {o["name"]: o for o in post(json.dumps(request)).json()["outputs"]}
    probs = np.array(out["probs"]["data"], dtype=np.float32).reshape(out["probs"]["shape"])
    for name, p, adv in zip(NAMES, probs, out["adversarial"]["data"]):
        print(f"JSON   {name} -> {labels[int(p.argmax())]} ({p.max():.3f}), adversarial={adv}")

    # 2. binary: FP32 tensor bytes after the JSON, probs and verdicts back as bytes
    tensor = (batch.astype(np.float32) / 255).astype("<f4").tobytes()
    header = json.dumps({
        "inputs": [{"name": "input", "datatype": "FP32", "shape": list(batch.shape), "parameters": {"binary_data_size": len(tensor)}}],
        "outputs": [{"name": "probs", "parameters": {"binary_data": True}}, {"name": "adversarial", "parameters": {"binary_data": True}}],
    }).encode()
    r = post(header + tensor, {"inference-header-content-length": str(len(header)), "content-type": "application/octet-stream"})
    n = int(r.headers["inference-header-content-length"])
    head, rest = json.loads(r.content[:n]), r.content[n:]
    arrays = {}
    for o in head["outputs"]:
        size = o["parameters"]["binary_data_size"]
        dtype = np.bool_ if o["datatype"] == "BOOL" else "<f4"
        arrays[o["name"]] = np.frombuffer(rest[:size], dtype=dtype).reshape(o["shape"])
        rest = rest[size:]
    for name, p, adv in zip(NAMES, arrays["probs"], arrays["adversarial"]):
        print(f"binary {name} -> {labels[int(p.argmax())]} ({p.max():.3f}), adversarial={bool(adv)}")
    print("JSON and binary agree:", bool(np.allclose(probs, arrays["probs"], atol=1e-6)))


if __name__ == "__main__":
    main()
