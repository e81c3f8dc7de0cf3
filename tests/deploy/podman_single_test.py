"""deploy_podman_single: the rendered `single` overlay's pod runs under `podman kube play`;
the CLI calls health, Sign and Verify through the published port (bound to 127.0.0.1),
KeyAdmin is refused to the frontend token and allowed to the admin token, the container runs
as 65532 on a read-only root filesystem, and SIGTERM drains (tests/deploy/drain.py) before
the process exits 0.

The image: by default the Containerfile's runtime stage (its packages, user, labels,
entrypoint and ldd check) built around the binaries of this build tree, in seconds once
podman has cached the base image and the package layer (compiling inside the build stage
takes ~25 min cold: too slow for CI; deploy_containerfile checks that stage's packages).
SESSIONTOKEN_IMAGE=<image> tests a given image instead (e.g. deploy/container/build.sh's),
skipped when it was built from other sources than this checkout's (its revision label).

The rendered manifest is changed only where podman 4.3 differs from a cluster, and each
change is stated in transform(): Secret volumes become ConfigMap volumes with the same file
names (podman 4.3.1 panics on Secret volumes) and the KEK's secretKeyRef its value; the init
container's output (config + auth) is given as a ConfigMap on its path (4.3.1 fails to start
pods with init containers here); names get a unique suffix, the pod's restartPolicy is Never
(the test reads the drained server's exit code), the gRPC port gets a hostPort on
127.0.0.1, and cluster-only objects (Services, NetworkPolicy, PDB, ServiceAccount) are left
out.

Skipped (exit 77, reason printed) where it cannot run: no podman, podman unusable (e.g. in a
container without privileges), or no base image and none can be made (debootstrap)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import drain  # noqa: E402
import drain_test  # noqa: E402
import harness  # noqa: E402

# An image to test as it is (e.g. deploy/container/build.sh's); by default the test builds
# TEST_IMAGE: the Containerfile's runtime stage around the binaries this build tree made.
IMAGE = os.environ.get("SESSIONTOKEN_IMAGE", "")
TEST_IMAGE = "localhost/sessiontoken:ci-test"
BASE_IMAGE = "localhost/debian:bookworm-slim"
SKIP = 77


def skip(reason):
    print(f"SKIPPED: {reason}")
    sys.exit(SKIP)


def podman(*args, check=True, timeout=120):
    p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {p.stderr.strip()}")
    return p


def preconditions():
    if shutil.which("podman") is None:
        skip("podman is not installed (apt-get install podman runc catatonit)")
    if not os.environ.get("CONTAINERS_CONF") and shutil.which("runc"):
        os.environ["CONTAINERS_CONF"] = os.path.join(REPO, "deploy", "container", "containers.conf")
    p = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
    if p.returncode != 0:
        skip(f"podman cannot run here: {p.stderr.strip()[:300]}")
    harness.require_binaries()
    if not IMAGE:
        return build_test_image()
    if podman("image", "exists", IMAGE, check=False).returncode != 0:
        skip(f"image {IMAGE} is not built (deploy/container/build.sh builds it offline)")
    stale = image_staleness()
    if stale:
        skip(f"image {IMAGE} {stale}; rebuild it with deploy/container/build.sh")
    return IMAGE


def runtime_containerfile():
    """deploy/container/Containerfile's runtime stage, its `COPY --from=build /out/ /` made a
    copy of the build context's out/ (what the build stage would have installed)."""
    text = read(os.path.join(REPO, "deploy", "container", "Containerfile"))
    marker = "# ---- runtime:"
    copy = "COPY --from=build /out/ /"
    if marker not in text or text.count(copy) != 1:
        raise AssertionError(f"Containerfile: no '{marker}' stage with one '{copy}'")
    stage = text[text.index(marker):].replace(copy, "COPY out/ /")
    return f"ARG BASE_IMAGE={BASE_IMAGE}\n{stage}LABEL sessiontoken.ci-test=1\n"


def build_test_image():
    """TEST_IMAGE from the runtime stage and this tree's binaries: the runtime packages are
    the Containerfile's, and its ldd check fails the build when one is missing. The base
    image and the package layer are cached by podman, so a rebuild takes seconds."""
    p = subprocess.run(["sh", os.path.join(REPO, "deploy", "container", "make-base-image.sh"),
                        BASE_IMAGE], capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        skip(f"no base image {BASE_IMAGE}: {p.stderr.strip()[-300:]}")
    with tempfile.TemporaryDirectory(prefix="sessiontoken-image-") as ctx:
        bin_dir = os.path.join(ctx, "out", "usr", "bin")
        os.makedirs(bin_dir)
        for src, name in ((harness.SERVER_BIN, "sessiontoken-server"),
                          (harness.CLI_BIN, "sessiontoken")):
            shutil.copy2(src, os.path.join(bin_dir, name))
        with open(os.path.join(ctx, "Containerfile"), "w") as f:
            f.write(runtime_containerfile())
        start = time.monotonic()
        podman("build", "--layers", "-f", os.path.join(ctx, "Containerfile"), "-t", TEST_IMAGE,
               ctx, timeout=900)
        print(f"built {TEST_IMAGE} in {time.monotonic() - start:.1f} s")
    podman("image", "prune", "-f", "--filter", "label=sessiontoken.ci-test=1", check=False)
    return TEST_IMAGE


# What goes into the image (deploy/container/Containerfile's COPY lines).
IMAGE_INPUTS = ["CMakeLists.txt", "CMakePresets.json", "cmake", "proto", "server", "client/cpp",
                "scripts/fetch-boringssl.sh", "deploy/container"]


def image_staleness():
    """Why the image does not hold this checkout's server (None when it does): the image
    names the commit it was built from (build.sh); any change to its inputs since then, or
    a commit this clone does not have, makes it stale."""
    rev = podman("image", "inspect", "--format",
                 '{{index .Labels "org.opencontainers.image.revision"}}', IMAGE).stdout.strip()
    git = ["git", "-C", REPO]
    if subprocess.run(git + ["cat-file", "-e", f"{rev}^{{commit}}"],
                      capture_output=True).returncode != 0:
        return f"was built from commit {rev!r}, which this checkout does not have"
    diff = subprocess.run(git + ["diff", "--quiet", rev, "--", *IMAGE_INPUTS],
                          capture_output=True)
    if diff.returncode != 0:
        return f"was built from {rev[:12]}; the server's sources changed since"
    return None


def read(path):
    with open(path) as f:
        return f.read()


def transform(objs, suffix, port, secrets_dir):
    """The rendered overlay, adapted to podman kube play (see the module comment)."""
    out = []
    secret_files = {"sessiontoken-auth": ["auth.textproto"]}
    config = next(o for o in objs if o["kind"] == "ConfigMap")["data"]["server.textproto"]
    for o in objs:
        kind = o["kind"]
        if kind in ("Service", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount"):
            continue
        if kind == "PersistentVolumeClaim":
            o["metadata"]["name"] += suffix
        if kind == "Deployment":
            o["metadata"]["name"] += suffix
            spec = o["spec"]["template"]["spec"]
            spec.pop("serviceAccountName", None)
            # A Deployment's pod restarts its container after any exit; the test checks the
            # exit code of the drained server, so this pod does not restart it.
            spec["restartPolicy"] = "Never"
            # podman 4.3.1 fails to start pods with init containers here ("failed to remove
            # once init container ... as it is running"): the file the init container would
            # write (the ConfigMap's server.textproto + the Secret's auth.textproto) is given
            # as a ConfigMap on the same path instead.
            spec.pop("initContainers")
            for v in spec["volumes"]:
                if v["name"] == "run":
                    v.pop("emptyDir")
                    v["configMap"] = {"name": "sessiontoken-run" + suffix}
                    out.append({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "sessiontoken-run" + suffix},
                                "data": {"server.textproto": config + read(os.path.join(
                                    secrets_dir, "auth.textproto"))}})
                elif "secret" in v:
                    name = v.pop("secret")["secretName"]
                    v["configMap"] = {"name": name + suffix}
                    out.append({"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": name + suffix},
                                "data": {f: read(os.path.join(secrets_dir, f))
                                         for f in secret_files[name]}})
                elif "configMap" in v:
                    v["configMap"]["name"] += suffix
                elif "persistentVolumeClaim" in v:
                    v["persistentVolumeClaim"]["claimName"] += suffix
            # The KEK's env var from the Secret: its value, as the kubelet would set it.
            for e in spec["containers"][0]["env"]:
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    e.pop("valueFrom")
                    e["value"] = read(os.path.join(secrets_dir, ref["key"])).strip()
            for p in spec["containers"][0]["ports"]:
                if p["name"] == "grpc":
                    p["hostPort"], p["hostIP"] = port, "127.0.0.1"
        if kind == "ConfigMap":
            o["metadata"]["name"] += suffix
        out.append(o)
    return out


class PodmanSingleTest(unittest.TestCase):
    image = None  # set by main

    def test_single_overlay_pod_serves_and_drains(self):
        import yaml
        import sessiontoken
        suffix = f"-t{os.getpid()}"
        port = harness.free_port()
        with tempfile.TemporaryDirectory(prefix="sessiontoken-podman-") as tmp:
            secrets = os.path.join(tmp, "secrets")
            subprocess.run(["sh", os.path.join(REPO, "deploy", "k8s", "make-secrets.sh"), secrets],
                           check=True, capture_output=True)
            r = subprocess.run(["kubectl", "kustomize",
                                os.path.join(REPO, "deploy", "k8s", "overlays", "single")],
                               capture_output=True, text=True, check=True)
            objs = [o for o in yaml.safe_load_all(r.stdout) if o]
            for o in objs:  # the image under test
                if o["kind"] == "Deployment":
                    for c in o["spec"]["template"]["spec"]["containers"]:
                        c["image"] = self.image
            manifest = os.path.join(tmp, "single.yaml")
            with open(manifest, "w") as f:
                yaml.safe_dump_all(transform(objs, suffix, port, secrets), f)
            prefix = f"sessiontoken{suffix}-pod"
            try:
                podman("kube", "play", manifest, timeout=300)
                pods = podman("pod", "ps", "--format", "{{.Name}}", "--filter",
                              f"name={prefix}").stdout.split()
                self.assertEqual(len(pods), 1, pods)
                self.serve_and_drain(sessiontoken, f"{pods[0]}-sessiontoken", port, secrets)
            finally:
                for pod in podman("pod", "ps", "--format", "{{.Name}}", "--filter",
                                  f"name={prefix}", check=False).stdout.split():
                    podman("pod", "rm", "-f", pod, check=False)
                for volume in podman("volume", "ls", "--format", "{{.Name}}",
                                     check=False).stdout.split():
                    if volume.endswith(suffix):
                        podman("volume", "rm", "-f", volume, check=False)

    def serve_and_drain(self, sessiontoken, ctr, port, secrets):
        target = f"127.0.0.1:{port}"
        frontend, admin = (os.path.join(secrets, f) for f in ("frontend.token", "admin.token"))
        deadline = time.monotonic() + 120
        while True:
            rc, out, err = harness.cli(target, "health")
            if rc == 0 and out.strip() == "SERVING":
                break
            if time.monotonic() > deadline:
                self.fail(f"no healthy server: {out}{err}\n" + podman("logs", ctr, check=False).stderr)
            time.sleep(1)
        info = json.loads(podman("inspect", ctr).stdout)[0]
        self.assertEqual(info["Config"]["User"].split(":")[0], "65532")
        self.assertTrue(info["HostConfig"]["ReadonlyRootfs"])
        rc, out, err = harness.cli(target, f"--token_file={frontend}", "--json", "sign",
                                   "--payload=hello from a pod", "--ttl=10m")
        self.assertEqual(rc, 0, err)
        token = json.loads(out)["token"]
        rc, out, err = harness.cli(target, f"--token_file={frontend}", "verify", token)
        self.assertEqual(rc, 0, err)
        self.assertIn("payload: hello from a pod", out)
        rc, out, err = harness.cli(target, f"--token_file={frontend}", "keys", "list")
        self.assertNotEqual(rc, 0)
        self.assertIn("PERMISSION_DENIED", err)
        rc, out, err = harness.cli(target, f"--token_file={admin}", "keys", "list")
        self.assertEqual(rc, 0, err)
        # Drain: SIGTERM to the server (the container's PID 1) under load.
        bearer = read(frontend).strip()
        load = drain.DrainLoad(target, metadata=[("authorization", f"Bearer {bearer}")])
        load.mark_sigterm()
        podman("kill", "--signal", "TERM", ctr)
        load.join()
        try:
            code = int(podman("wait", ctr, timeout=60).stdout.strip())
        except subprocess.TimeoutExpired:
            self.fail("the server did not exit within 60 s of SIGTERM:\n"
                      + podman("ps", "-a", "--pod", check=False).stdout
                      + podman("logs", ctr, check=False).stderr[-3000:])
        drain_test.check_drain(self, load, code)
        self.assertIn("draining", podman("logs", ctr).stderr)


if __name__ == "__main__":
    PodmanSingleTest.image = preconditions()
    unittest.main(verbosity=2)
