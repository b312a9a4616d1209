# Python packages kernel-builder pins itself (python-packages.lock.json, made by
# update-python-lock.py): wheels fetched by hash and installed into virtual environments of
# nixpkgs' python3. Used for kernel-builder's own package and for pytest in test shells.
{ pkgs, system, util }:
let
  lock = builtins.fromJSON (builtins.readFile ./python-packages.lock.json);
  python = pkgs.python3;
  version = python.pythonVersion;
  pinned = group:
    let sets = lock.sets.${group}; in
    if !(sets ? ${version}) then
      throw "kernel-builder: nix/python-packages.lock.json pins no ${group} packages for Python ${version} (nixpkgs' python3); run nix/update-python-lock.py --python ${version}"
    else if !(sets.${version} ? ${system}) then
      throw "kernel-builder: nix/python-packages.lock.json pins no ${group} packages for ${system}"
    else sets.${version}.${system};
  fetchWheel = wheel: pkgs.fetchurl { inherit (wheel) url sha256; name = wheel.filename; };
in
rec {
  inherit python version;
  sitePackages = "lib/python${version}/site-packages";

  # The fixed-output fetches of a group, as the CLI pre-loads them (nix-store --add-fixed).
  fetches = group: map (wheel: { inherit (wheel) name version url sha256 size filename; path = (fetchWheel wheel).outPath; }) (pinned group);

  # Installers want a wheel's own file name; a store path is <hash>-<name>.
  linkWheels = ''
    mkdir -p "$TMPDIR/wheelhouse"
    for wheel in $wheels; do
      base="$(basename "$wheel")"
      ln -s "$wheel" "$TMPDIR/wheelhouse/''${base#*-}"
    done
  '';

  # A virtual environment of python3 with the wheels of `group` (no index, no network);
  # `install` runs afterwards in the unpacked source, if any.
  mkEnv = { name, group, src ? null, install ? "", passthru ? { } }:
    pkgs.stdenv.mkDerivation ({
      inherit name passthru;
      nativeBuildInputs = [ python ];
      wheels = map fetchWheel (pinned group);
      dontConfigure = true;
      dontFixup = true;
      buildPhase = ''
        runHook preBuild
        export PIP_NO_INDEX=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
        ${linkWheels}
        python3 -m venv "$out"
        "$out/bin/python" -m pip install --quiet --no-deps --no-build-isolation "$TMPDIR"/wheelhouse/*.whl
        ${install}
        runHook postBuild
      '';
      installPhase = "runHook preInstall; runHook postInstall";
    } // (if src == null then { dontUnpack = true; } else { inherit src; }));
}
