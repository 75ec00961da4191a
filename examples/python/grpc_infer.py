"""The Open Inference Protocol over gRPC with grpcio, from the published proto
(proto/grpc_predict_v2.proto), as a KServe or Triton gRPC client sends it.
The stubs are generated into a temporary folder with grpc_tools.
    S2S_GRPC=localhost:8081 python3 examples/python/grpc_infer.py
"""
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import grpc
from grpc_tools import protoc

from png_gray import read_png_gray

ROOT = Path(__file__).resolve().parent.parent.parent
TARGET = os.environ.get("S2S_GRPC", "localhost:8081")
MODEL = os.environ.get("S2S_MODEL", "fashion-mnist")
METADATA = [("authorization", f"Bearer {os.environ['S2S_API_KEY']}")] if os.environ.get("S2S_API_KEY") else []
NAMES = ["shirt.png", "sneaker.png", "trouser.png"]


def stubs():
    out = tempfile.mkdtemp(prefix="s2s-grpc-")
    if protoc.main(["protoc", f"-I{ROOT / 'proto'}", f"--python_out={out}", f"--grpc_python_out={out}", "grpc_predict_v2.proto"]) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    import grpc_predict_v2_pb2 as pb
    import grpc_predict_v2_pb2_grpc as pb_grpc
    return pb, pb_grpc


def main():
    pb, pb_grpc = stubs()
    with grpc.insecure_channel(TARGET) as channel:
        client = pb_grpc.GRPCInferenceServiceStub(channel)
        print("live:", client.ServerLive(pb.ServerLiveRequest()).live, "ready:", client.ServerReady(pb.ServerReadyRequest()).ready)
        meta = client.ModelMetadata(pb.ModelMetadataRequest(name=MODEL), metadata=METADATA)
        print("model:", meta.name, list(meta.versions), "outputs:", [o.name for o in meta.outputs])

        batch = np.array([read_png_gray(ROOT / "examples" / "images" / n) for n in NAMES], dtype=np.uint8).reshape(len(NAMES), 1, 28, 28)
        request = pb.ModelInferRequest(model_name=MODEL, id="grpc-1")
        request.inputs.add(name="input", datatype="UINT8", shape=list(batch.shape))
        request.outputs.add(name="probs")
        request.outputs.add(name="adversarial")
        request.raw_input_contents.append(batch.tobytes())
        reply = client.ModelInfer(request, metadata=METADATA, timeout=30)

        out = {o.name: (o, raw) for o, raw in zip(reply.outputs, reply.raw_output_contents)}
        probs = np.frombuffer(out["probs"][1], dtype="<f4").reshape(list(out["probs"][0].shape))
        adversarial = np.frombuffer(out["adversarial"][1], dtype=np.bool_)
        labels = json.loads(meta.properties["labels"])
        for name, p, adv in zip(NAMES, probs, adversarial):
            print(f"{name} -> {labels[int(p.argmax())]} ({p.max():.3f}), adversarial={bool(adv)}")
        print("id:", reply.id, "noise sigma:", reply.parameters["noise_sigma"].double_param)

        try:
            bad = pb.ModelInferRequest(model_name=MODEL)
            bad.inputs.add(name="input", datatype="UINT8", shape=[1, 3, 28, 28])
            bad.raw_input_contents.append(bytes(3 * 28 * 28))
            client.ModelInfer(bad, metadata=METADATA, timeout=30)
        except grpc.RpcError as e:
            print("a wrong shape is refused:", e.code().name, "-", e.details())


if __name__ == "__main__":
    main()
