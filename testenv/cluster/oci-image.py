#!/usr/bin/env python3
"""Builds a single-layer OCI image archive from local files, without a
container engine and without pulling anything, for `ctr images import`.

    oci-image.py --name NAME:TAG --output IMAGE.tar \
        --file SRC:DST[:MODE] ... [--user UID:GID] [--entrypoint ARG ...] [--cmd ARG ...]

The layer holds exactly the files given (parents created as directories),
owned by root, with deterministic timestamps, so the same inputs give the
same image digest.
"""

import argparse
import hashlib
import io
import json
import os
import tarfile


def layer_tar(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        seen = set()
        for src, dst, mode in sorted(files, key=lambda f: f[1]):
            parts = dst.strip("/").split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in seen:
                    seen.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            with open(src, "rb") as handle:
                data = handle.read()
            info = tarfile.TarInfo("/".join(parts))
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def blob(tar, data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def add_json(tar, name, value):
    data = json.dumps(value, sort_keys=True).encode()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--file", action="append", default=[], help="SRC:DST[:OCTAL MODE]")
    parser.add_argument("--user")
    parser.add_argument("--entrypoint", nargs="*", default=[])
    parser.add_argument("--cmd", nargs="*", default=[])
    args = parser.parse_args()

    files = []
    for spec in args.file:
        src, dst, *mode = spec.split(":")
        files.append((src, dst, int(mode[0], 8) if mode else 0o755))
    layer = layer_tar(files)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": args.entrypoint or None, "Cmd": args.cmd or None},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    if args.user:
        config["config"]["User"] = args.user
    tmp = args.output + ".tmp"
    with tarfile.open(tmp, mode="w") as tar:
        layer_desc = blob(tar, layer, "application/vnd.oci.image.layer.v1.tar")
        config_data = json.dumps(config, sort_keys=True).encode()
        config_desc = blob(tar, config_data, "application/vnd.oci.image.config.v1+json")
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc,
            "layers": [layer_desc],
        }
        manifest_desc = blob(
            tar, json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json"
        )
        manifest_desc["annotations"] = {"io.containerd.image.name": args.name,
                                        "org.opencontainers.image.ref.name": args.name.rsplit(":", 1)[-1]}
        add_json(tar, "oci-layout", {"imageLayoutVersion": "1.0.0"})
        add_json(tar, "index.json", {"schemaVersion": 2, "manifests": [manifest_desc]})
    os.replace(tmp, args.output)


if __name__ == "__main__":
    main()
