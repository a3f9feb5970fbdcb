"""A gRPC client we did not write: Python grpcio, with stubs generated here by grpcio-tools from
the repository's proto/grpc_predict_v2.proto and gRPC's own health and reflection protos.

    python3 grpc_client.py HOST:PORT CALLS.json  ->  one JSON result per call on stdout (a list)

Each call is {"rpc": name, "request": {...proto3 JSON...}, "metadata": [[k, v]], "timeout": s}
or, for ModelStreamInfer, {"rpc": "ModelStreamInfer", "requests": [...]}; {"zeros": n} in a call
adds a raw_input_contents entry of n zero bytes (for messages too large to pass as JSON).
Special rpcs: "Health/Check" and "Health/Watch" (first answer), "Reflection" (services, and the
file that defines inference.GRPCInferenceService, parsed with protobuf's descriptor_pb2).
"""
import importlib
import json
import os
import shutil
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pb2, json_format
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTOS = {
    "predict": (os.path.join(ROOT, "proto"), "grpc_predict_v2.proto"),
    "health": (os.path.join(ROOT, "node_modules", "grpc-health-check", "proto"), "health/v1/health.proto"),
    "reflection": (os.path.join(ROOT, "node_modules", "@grpc", "reflection", "build", "proto"), "grpc/reflection/v1/reflection.proto"),
}


def generate(out):
    """Stubs for each proto, as grpcio-tools writes them. Each .proto is copied to a path of its
    own first: the Python module path follows the file's path, and grpc/reflection/... would
    shadow the grpc package itself."""
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    for key, (folder, name) in PROTOS.items():
        source = os.path.join(out, "src", key)
        os.makedirs(source, exist_ok=True)
        shutil.copy(os.path.join(folder, name), os.path.join(source, os.path.basename(name)))
        code = protoc.main(["protoc", f"-I{source}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", os.path.join(source, os.path.basename(name))])
        if code != 0:
            raise SystemExit(f"protoc failed on {name}")
    sys.path.insert(0, out)


def module(path):
    return importlib.import_module(path.replace("/", ".").removesuffix(".proto"))


def failure(error):
    return {
        "ok": False,
        "code": error.code().name,
        "details": error.details(),
        "trailing": dict(error.trailing_metadata() or ()),
    }


def as_dict(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def main():
    target, calls_file = sys.argv[1], sys.argv[2]
    with open(calls_file) as f:
        calls = json.load(f)
    out = tempfile.mkdtemp(prefix="grpc-stubs-")
    generate(out)
    pb = module("grpc_predict_v2_pb2")
    stubs = module("grpc_predict_v2_pb2_grpc")
    health_pb, health_stubs = module("health_pb2"), module("health_pb2_grpc")
    refl_pb, refl_stubs = module("reflection_pb2"), module("reflection_pb2_grpc")

    options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    channel = grpc.insecure_channel(target, options=options)
    inference = stubs.GRPCInferenceServiceStub(channel)
    health = health_stubs.HealthStub(channel)
    reflection = refl_stubs.ServerReflectionStub(channel)

    def request_of(rpc, body, zeros=None):
        kind = {
            "ServerLive": pb.ServerLiveRequest, "ServerReady": pb.ServerReadyRequest, "ServerMetadata": pb.ServerMetadataRequest,
            "ModelReady": pb.ModelReadyRequest, "ModelMetadata": pb.ModelMetadataRequest, "ModelInfer": pb.ModelInferRequest,
            "ModelStreamInfer": pb.ModelInferRequest, "RepositoryModelLoad": pb.RepositoryModelLoadRequest,
            "RepositoryModelUnload": pb.RepositoryModelUnloadRequest,
        }[rpc]
        message = json_format.ParseDict(body or {}, kind())
        if zeros is not None:
            message.raw_input_contents.append(bytes(zeros))
        return message

    results = []
    for call in calls:
        rpc = call["rpc"]
        metadata = [tuple(m) for m in call.get("metadata", [])]
        timeout = call.get("timeout", 60)
        try:
            if rpc == "Health/Check":
                response = health.Check(health_pb.HealthCheckRequest(service=call.get("service", "")), timeout=timeout)
                results.append({"ok": True, "status": health_pb.HealthCheckResponse.ServingStatus.Name(response.status)})
            elif rpc == "Health/Watch":
                stream = health.Watch(health_pb.HealthCheckRequest(service=call.get("service", "")), timeout=timeout)
                first = next(stream)
                stream.cancel()
                results.append({"ok": True, "status": health_pb.HealthCheckResponse.ServingStatus.Name(first.status)})
            elif rpc == "Reflection":
                def ask(**kwargs):
                    return next(reflection.ServerReflectionInfo(iter([refl_pb.ServerReflectionRequest(**kwargs)]), timeout=timeout))
                services = [s.name for s in ask(list_services="").list_services_response.service]
                files = ask(file_containing_symbol="inference.GRPCInferenceService").file_descriptor_response.file_descriptor_proto
                described = {}
                for raw in files:
                    fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
                    for service in fd.service:
                        described[f"{fd.package}.{service.name}"] = [m.name for m in service.method]
                    for message in fd.message_type:
                        described[f"{fd.package}.{message.name}"] = [f"{field.name}={field.number}" for field in message.field]
                results.append({"ok": True, "services": services, "described": described})
            elif rpc == "ModelStreamInfer":
                requests = [request_of(rpc, body) for body in call["requests"]]
                answers = inference.ModelStreamInfer(iter(requests), metadata=metadata, timeout=timeout)
                results.append({"ok": True, "responses": [as_dict(a) for a in answers]})
            else:
                method = getattr(inference, rpc)
                response, state = method.with_call(request_of(rpc, call.get("request"), call.get("zeros")), metadata=metadata, timeout=timeout)
                results.append({"ok": True, "response": as_dict(response)})
        except grpc.RpcError as error:
            results.append(failure(error))
    channel.close()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
