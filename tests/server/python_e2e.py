#!/usr/bin/python3
"""End-to-end test of onereward-server with a client that is not ours: Python's grpcio
(Debian's python3-grpcio), stubs generated from our .proto files at test time.

usage: python_e2e.py --server BIN --model DIR --proto-dir DIR --extra-proto-dir DIR
"""
import argparse
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib


def png(width, height, pixel):
    """A minimal RGB PNG (no PIL here): `pixel(x, y) -> (r, g, b)`."""
    raw = b"".join(b"\x00" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "result is not a PNG"
    return struct.unpack(">II", data[16:24])


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def rpc_error(call, what):
    """Runs call() and returns the grpc.RpcError it raises; fails with `what` if it succeeds."""
    import grpc
    try:
        call()
    except grpc.RpcError as e:
        return e
    fail(what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--proto-dir", required=True)
    ap.add_argument("--extra-proto-dir", required=True)
    ap.add_argument("--protoc", default="protoc")
    ap.add_argument("--plugin", default="/usr/bin/grpc_python_plugin")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="onereward-py-e2e-")
    gen = os.path.join(tmp, "gen")
    os.makedirs(gen)
    # The standard protocols' files move to paths of their own: a generated "grpc/..." Python
    # package would shadow grpcio's. Their proto packages (the wire names) stay the same.
    std = os.path.join(tmp, "std")
    for src, dst in ((os.path.join(args.proto_dir, "grpc/health/v1/health.proto"), "std_health/health.proto"),
                     (os.path.join(args.extra_proto_dir, "grpc/reflection/v1alpha/reflection.proto"),
                      "std_reflection/reflection.proto")):
        os.makedirs(os.path.dirname(os.path.join(std, dst)), exist_ok=True)
        with open(src) as f, open(os.path.join(std, dst), "w") as g:
            g.write(f.read())
    subprocess.check_call([
        args.protoc, "-I", args.proto_dir, "-I", std, "--python_out=" + gen, "--grpc_out=" + gen,
        "--plugin=protoc-gen-grpc=" + args.plugin, "onereward/v1/image_fill.proto", "std_health/health.proto",
        "std_reflection/reflection.proto"
    ])
    sys.path.insert(0, gen)
    import grpc
    from onereward.v1 import image_fill_pb2 as pb
    from onereward.v1 import image_fill_pb2_grpc as pb_grpc
    from std_health import health_pb2, health_pb2_grpc
    from std_reflection import reflection_pb2, reflection_pb2_grpc

    port_file = os.path.join(tmp, "ports.json")
    log = open(os.path.join(tmp, "server.log"), "w+")
    server = subprocess.Popen([
        args.server, "--model", args.model, "--listen", "127.0.0.1:0", "--metrics-listen", "", "--port-file",
        port_file, "--drain-grace", "60", "--threads", "1"
    ], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while not os.path.exists(port_file):
            if server.poll() is not None:
                fail("server exited before serving")
            if time.time() > deadline:
                fail("server did not start")
            time.sleep(0.05)
        port = json.load(open(port_file))["grpc_port"]
        channel = grpc.insecure_channel("127.0.0.1:%d" % port)
        stub = pb_grpc.ImageFillStub(channel)

        # Health: overall and per service.
        health = health_pb2_grpc.HealthStub(channel)
        for svc in ("", "onereward.v1.ImageFill"):
            r = health.Check(health_pb2.HealthCheckRequest(service=svc), timeout=10)
            check(r.status == health_pb2.HealthCheckResponse.SERVING, "health %r is not SERVING" % svc)

        # Reflection lists our service.
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                   timeout=10))
        names = {s.name for s in responses[0].list_services_response.service}
        check("onereward.v1.ImageFill" in names, "reflection does not list onereward.v1.ImageFill: %s" % names)
        check("grpc.health.v1.Health" in names, "reflection does not list grpc.health.v1.Health: %s" % names)

        info = stub.GetInfo(pb.GetInfoRequest(), timeout=10)
        check(info.defaults.steps == 50 and "base" in info.variants, "GetInfo: %s" % info)

        image = png(64, 48, lambda x, y: (x * 4 % 256, y * 5 % 256, 90))
        mask = png(64, 48, lambda x, y: (255, 255, 255) if 16 <= x < 48 and 12 <= y < 36 else (0, 0, 0))

        # One fill job: queued, one progress event per step, the result.
        req = pb.FillRequest(task=pb.TASK_FILL, image=image, mask=mask, prompt="a red boat", steps=5, seed=3,
                             request_id="py-1")
        events = list(stub.Fill(req, timeout=120))
        check(events[0].WhichOneof("event") == "queued", "first event is not queued")
        steps = [e.progress.step for e in events if e.WhichOneof("event") == "progress"]
        check(steps == [1, 2, 3, 4, 5], "progress steps %s" % steps)
        result = events[-1].result
        check(events[-1].WhichOneof("event") == "result", "last event is not the result")
        check(all(e.request_id == "py-1" for e in events), "request_id not echoed")
        check(result.seed == 3 and len(result.images) == 1, "result fields")
        check(png_size(result.images[0]) == (64, 48), "result size %s" % (png_size(result.images[0]),))

        # Extend without a prompt, JPEG out.
        req = pb.FillRequest(task=pb.TASK_EXTEND, image=image, extend=pb.Margins(left=16, right=16), steps=2,
                             output_format=pb.OUTPUT_FORMAT_JPEG)
        events = list(stub.Fill(req, timeout=120))
        res = events[-1].result
        check(res.width == 96 and res.height == 48, "extend size %dx%d" % (res.width, res.height))
        check(res.images[0][:2] == b"\xff\xd8", "extend result is not a JPEG")

        # Refusals carry the code and name the field.
        e = rpc_error(lambda: list(stub.Fill(pb.FillRequest(task=pb.TASK_FILL, image=image, mask=mask, prompt="x",
                                                            steps=1000), timeout=30)),
                      "steps=1000 was accepted")
        check(e.code() == grpc.StatusCode.INVALID_ARGUMENT, "steps=1000 -> %s" % e.code())
        check("steps" in e.details() and "100" in e.details(), "message: %s" % e.details())
        e = rpc_error(lambda: stub.Cancel(pb.CancelRequest(request_id="nobody"), timeout=10),
                      "Cancel of an unknown id succeeded")
        check(e.code() == grpc.StatusCode.NOT_FOUND, "Cancel unknown -> %s" % e.code())

        # Cancel by id from another channel (another connection).
        other = pb_grpc.ImageFillStub(grpc.insecure_channel("127.0.0.1:%d" % port,
                                                            options=[("grpc.use_local_subchannel_pool", 1)]))
        call = stub.Fill(pb.FillRequest(task=pb.TASK_FILL, image=image, mask=mask, prompt="slow", steps=100,
                                        request_id="py-cancel"), timeout=120)
        first_progress = threading.Event()
        outcome = {}

        def consume():
            try:
                for e in call:
                    if e.WhichOneof("event") == "progress":
                        first_progress.set()
                outcome["code"] = grpc.StatusCode.OK
            except grpc.RpcError as e:
                outcome["code"] = e.code()

        t = threading.Thread(target=consume)
        t.start()
        check(first_progress.wait(60), "no progress before cancel")
        r = other.Cancel(pb.CancelRequest(request_id="py-cancel"), timeout=10)
        check(r.state == "running", "cancel state %r" % r.state)
        t.join(60)
        check(outcome.get("code") == grpc.StatusCode.CANCELLED, "cancelled call ended with %s" % outcome.get("code"))

        # SIGTERM with a job in flight: the job finishes, new calls are refused, exit 0.
        inflight = stub.Fill(pb.FillRequest(task=pb.TASK_FILL, image=image, mask=mask, prompt="drain", steps=30),
                             timeout=120)
        got = {"steps": 0}
        started = threading.Event()

        def drain_consume():
            try:
                for e in inflight:
                    if e.WhichOneof("event") == "progress":
                        got["steps"] += 1
                        started.set()
                    if e.WhichOneof("event") == "result":
                        got["result"] = True
                got["code"] = grpc.StatusCode.OK
            except grpc.RpcError as e:
                got["code"] = e.code()
            started.set()

        t = threading.Thread(target=drain_consume)
        t.start()
        check(started.wait(60), "drain job did not start")
        server.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        r = health.Check(health_pb2.HealthCheckRequest(service="onereward.v1.ImageFill"), timeout=10)
        check(r.status == health_pb2.HealthCheckResponse.NOT_SERVING, "health while draining: %s" % r.status)
        e = rpc_error(lambda: list(stub.Fill(pb.FillRequest(task=pb.TASK_FILL, image=image, mask=mask, prompt="late",
                                                            steps=2), timeout=30)),
                      "a new call was accepted while draining")
        check(e.code() == grpc.StatusCode.UNAVAILABLE, "new call while draining -> %s" % e.code())
        t.join(120)
        check(got.get("code") == grpc.StatusCode.OK and got.get("result"), "in-flight job lost: %s" % got)
        check(got["steps"] == 30, "in-flight job saw %d progress events" % got["steps"])
        check(server.wait(60) == 0, "server exit code %s" % server.returncode)
        print("PASS")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.seek(0)
        text = log.read()
        if "PASS" not in sys.argv:
            sys.stdout.write("--- server log (tail) ---\n" + "\n".join(text.splitlines()[-30:]) + "\n")


if __name__ == "__main__":
    main()
