#!/usr/bin/env python3
"""Turn a cdylib into a loadable DuckDB extension by appending the 512-byte footer.

Footer layout (what DuckDB's loader reads from the end of the file):
  eight NUL-padded 32-byte fields, in file order:
    3 empty, ABI type, extension version, C API version, platform, magic "4"
  then 256 zero bytes where a signature would go (unsigned extension).

The extension version is read from Cargo.toml unless --version is given.

    append_footer.py target/release/libpagila_star.so build/release/pagila_star.duckdb_extension
"""
import argparse
import pathlib
import re
import shutil
import sys

FIELD = 32


def field(text: str) -> bytes:
    raw = text.encode()
    if len(raw) > FIELD:
        sys.exit(f"append_footer: footer field {text!r} is longer than {FIELD} bytes")
    return raw + b"\0" * (FIELD - len(raw))


def cargo_version(cargo_toml: pathlib.Path) -> str:
    in_package = False
    for line in cargo_toml.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            in_package = line == "[package]"
        elif in_package:
            m = re.match(r'version\s*=\s*"([^"]+)"', line)
            if m:
                return m.group(1)
    sys.exit(f"append_footer: no [package] version in {cargo_toml}")


def footer(ext_version: str, c_api: str, platform: str, abi: str = "C_STRUCT") -> bytes:
    meta = [field(""), field(""), field(""), field(abi), field(ext_version), field(c_api), field(platform), field("4")]
    out = b"".join(meta) + b"\0" * 256
    assert len(out) == 512
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("library", type=pathlib.Path, help="the built cdylib (.so)")
    p.add_argument("output", type=pathlib.Path, help="where to write NAME.duckdb_extension")
    p.add_argument("--version", help="extension version (default: from Cargo.toml)")
    p.add_argument("--cargo-toml", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent.parent / "Cargo.toml")
    p.add_argument("--c-api", default="v1.2.0")
    p.add_argument("--platform", default="linux_amd64")
    a = p.parse_args()
    version = a.version or "v" + cargo_version(a.cargo_toml)
    a.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.output.with_suffix(".tmp")
    shutil.copyfile(a.library, tmp)
    with open(tmp, "ab") as f:
        f.write(footer(version, a.c_api, a.platform))
    tmp.replace(a.output)
    print(f"append_footer: {a.output} ({version}, C API {a.c_api}, {a.platform})")


if __name__ == "__main__":
    main()
