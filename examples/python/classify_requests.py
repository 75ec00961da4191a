"""The REST API from Python with requests: one raw image, then a multipart
batch of every image in examples/images.
    S2S_URL=http://localhost:8080 python3 examples/python/classify_requests.py
"""
import os
import sys
from pathlib import Path

import requests

URL = os.environ.get("S2S_URL", "http://localhost:8080")
HEADERS = {"authorization": f"Bearer {os.environ['S2S_API_KEY']}"} if os.environ.get("S2S_API_KEY") else {}
IMAGES = Path(__file__).resolve().parent.parent / "images"


def main():
    shirt = (IMAGES / "shirt.png").read_bytes()
    r = requests.post(f"{URL}/v1/classify", params={"topK": 3}, data=shirt,
                      headers={**HEADERS, "content-type": "image/png"}, timeout=30)
    r.raise_for_status()
    result = r.json()["results"][0]
    print("shirt.png top 3:", ", ".join(f"{t['label']} {t['probability']:.3f}" for t in result["top"]))
    print("detection:", result["detection"]["verdict"], f"(score {result['detection']['score']:.4f})")

    files = sorted(IMAGES.glob("*.png"))
    parts = [("image", (f.name, f.read_bytes(), "image/png")) for f in files]
    r = requests.post(f"{URL}/v1/classify", params={"topK": 1}, files=parts, headers=HEADERS, timeout=30)
    r.raise_for_status()
    for item in r.json()["results"]:
        top = item["top"][0]
        print(f"{item['filename']} -> {top['label']} ({top['probability']:.3f}), {item['detection']['verdict']}")

    bad = requests.post(f"{URL}/v1/classify", data=b"not an image", headers={**HEADERS, "content-type": "image/png"}, timeout=30)
    print("a broken image is refused:", bad.status_code, bad.json()["code"])


if __name__ == "__main__":
    try:
        main()
    except requests.RequestException as e:
        sys.exit(f"request failed: {e}")
