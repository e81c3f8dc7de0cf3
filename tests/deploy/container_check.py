"""deploy_containerfile: static checks of deploy/container/Containerfile and its scripts
(no image is built): multi-stage with the base chosen by a build argument, no compiler or
-dev package in the runtime stage, a numeric non-root USER, OCI labels, the server as the
entrypoint, nothing pinned to `latest`; the shell scripts parse (sh -n); the build stage
installs every Debian package the image's CMake files name (`# Debian: pkg` beside each
find_package), so a new dependency cannot be forgotten there. The runtime stage's shared
libraries are checked by building it (deploy_podman_single: ldd in the image)."""

import os
import re
import subprocess
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIR = os.path.join(REPO, "deploy", "container")


def stages(text):
    """[(FROM line, [instructions])] with continuation lines joined."""
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append((line, []))
        elif out:
            out[-1][1].append(line)
    return out


# The CMake files the image's build stage uses (Containerfile COPY lines; tests are off).
IMAGE_CMAKE_DIRS = ["server", "client/cpp", "cmake"]


def cmake_debian_packages():
    """{find_package/pkg_check_modules line: [Debian packages]} over the CMake files the
    image builds; one without a `# Debian:` comment on its line or the line above maps
    to []."""
    files = [os.path.join(REPO, "CMakeLists.txt")]
    for d in IMAGE_CMAKE_DIRS:
        for root, _, names in os.walk(os.path.join(REPO, d)):
            files += [os.path.join(root, n) for n in names
                      if n == "CMakeLists.txt" or n.endswith(".cmake")]
    found = {}
    for path in files:
        with open(path) as f:
            lines = f.read().splitlines()
        for i, line in enumerate(lines):
            if not re.match(r"\s*(find_package|pkg_check_modules)\(", line):
                continue
            note = re.search(r"# Debian: (.*)$", line) or (
                i > 0 and re.match(r"\s*# Debian: (.*)$", lines[i - 1]))
            packages = re.split(r"[,\s]+", note.group(1).strip()) if note else []
            found[f"{os.path.relpath(path, REPO)}:{i + 1}: {line.strip()}"] = packages
    return found


class ContainerfileTest(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(DIR, "Containerfile")) as f:
            self.text = f.read()
        self.stages = stages(self.text)

    def test_base_from_a_build_argument_and_multi_stage(self):
        self.assertRegex(self.text, r"(?m)^ARG BASE_IMAGE=debian:bookworm-slim$")
        self.assertGreaterEqual(len(self.stages), 2)
        for frm, _ in self.stages:
            self.assertRegex(frm, r"^FROM \$\{BASE_IMAGE\}( AS \w+)?$")
        self.assertNotRegex(self.text, r":latest\b")

    def test_runtime_stage_has_no_compilers(self):
        _, runtime = self.stages[-1]
        body = "\n".join(runtime)
        for banned in ("build-essential", "gcc", "g++", "clang", "cmake", "-dev ", "-dev\n",
                       "protobuf-compiler"):
            self.assertNotIn(banned, body + "\n", banned)
        copies = [i for i in runtime if i.startswith("COPY")]
        self.assertTrue(copies and all("--from=build /out/" in c for c in copies), copies)

    def test_non_root_numeric_user_entrypoint_and_labels(self):
        _, runtime = self.stages[-1]
        users = [i.split()[1] for i in runtime if i.startswith("USER ")]
        self.assertEqual(len(users), 1)
        uid = users[0].split(":")[0]
        self.assertTrue(uid.isdigit() and int(uid) != 0, users)
        self.assertIn('ENTRYPOINT ["/usr/bin/sessiontoken-server"]', runtime)
        labels = " ".join(i for i in runtime if i.startswith("LABEL"))
        for key in ("title", "description", "version", "revision", "source", "licenses"):
            self.assertIn(f"org.opencontainers.image.{key}=", labels)
        self.assertTrue(any(i.startswith("VOLUME") and "/var/lib/sessiontoken" in i
                            for i in runtime))

    def test_build_stage_installs_what_cmake_finds(self):
        frm, build = self.stages[0]
        self.assertIn("AS build", frm)
        installed = set(" ".join(i for i in build if "apt-get install" in i).split())
        found = cmake_debian_packages()
        self.assertIn("libgrpc++-dev", sum(found.values(), []))  # the scan sees the files
        for where, packages in found.items():
            self.assertTrue(packages, f"{where}: no '# Debian: <package>' comment")
            for p in packages:
                self.assertIn(p, installed, f"{where}: {p} is not in the build stage")

    def test_scripts_parse(self):
        for name in ("build.sh", "make-base-image.sh", "podman-env.sh"):
            subprocess.run(["sh", "-n", os.path.join(DIR, name)], check=True)
        subprocess.run(["sh", "-n", os.path.join(REPO, "deploy", "k8s", "make-secrets.sh")],
                       check=True)

    def test_ignore_file_keeps_build_outputs_out_of_the_context(self):
        with open(os.path.join(DIR, "Containerfile.dockerignore")) as f:
            entries = {l.strip() for l in f if l.strip() and not l.startswith("#")}
        self.assertTrue({".git", ".cache", "build", "**/node_modules"} <= entries, entries)


if __name__ == "__main__":
    unittest.main(verbosity=2)
