# kernel-builder as a Nix package: the CLI and its runtime dependencies in one virtual
# environment of nixpkgs' python3, from pinned wheels (python-packages.lock.json) and the
# repository's own source. With real nixpkgs this would be a buildPythonApplication over
# python3Packages; docs/nix.md says why and what differs.
{ pkgs, python, src, version }:
python.mkEnv {
  name = "kernel-builder-${version}";
  group = "kernel-builder";
  inherit src;
  install = ''
    "$out/bin/python" -m pip install --quiet --no-deps --no-build-isolation .
    "$out/bin/kernel-builder" --version
  '';
  passthru = { inherit version; };
}
