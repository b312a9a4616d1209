# lib.genKernelFlakeOutputs: the outputs of a kernel's flake (docs/nix.md).
#
# Everything about *which* variants a kernel gets and *what* each is built with comes from the
# kernel's lock (kernel-builder.lock.json, written by `kernel-builder lock` in Python); every
# build step is a kernel-builder command. This file only wires them into derivations:
#
#   artifact of the lock  --fetchurl (fixed output, the lock's sha256)-->  wheel
#   wheels of a toolchain --`kernel-builder toolchains install`-->         toolchain environment
#   toolchain + sources   --`kernel-builder build-variant`, check-builds, check-abi-->  <variant>/
#
# Settings only the kernel-builder CLI knows reach an `--impure` evaluation as environment
# variables (a pure evaluation sees none and uses the defaults in brackets):
#   KERNEL_BUILDER_UNIQUE_ID      ops-namespace suffix [the flake's short revision, else a hash of the sources]
#   KERNEL_BUILDER_KERNEL_COMMIT / _DIRTY   the kernel's git state for provenance [self.rev]
#   KERNEL_BUILDER_SOURCE_COMMIT / _DIRTY   kernel-builder's own [its flake's rev]
#   KERNEL_BUILDER_CUDA_ARCHS     only these CUDA capabilities, e.g. 9.0 [the argument cudaArchs, else all]
{ nixpkgs, kernelBuilder }:
{ self
, path ? self.outPath
, torchVersions ? (versions: versions)
, doGetKernelCheck ? true
, pythonCheckInputs ? (ps: [ ])
, cudaArchs ? null
}:
let
  util = import ./util.nix;
  lockLib = import ./lock.nix { inherit util; };
  matrix = import ./lib.nix { };
  lock = lockLib.read path;
  config = builtins.fromTOML (builtins.readFile (path + "/build.toml"));
  kernelName = util.storeName (config.general.name or "kernel");
  repoId = config.general.hub.repo-id or "local/${config.general.name or "kernel"}";
  esc = util.escapeShellArg;
  env = util.impureEnv;
  envOr = name: default: let value = env name; in if value == "" then default else value;

  # The sources a variant is built from: the flake minus build outputs, VCS and editor state,
  # and the files that only say how to build (the flake, the lock), so that editing those does
  # not rebuild a variant whose toolchain did not change.
  src = builtins.path {
    inherit path;
    name = "${kernelName}-source";
    filter = file: type:
      let
        rel = util.removePrefix (toString path + "/") (toString file);
        base = baseNameOf file;
      in
      !(builtins.elem base [ ".git" ".venv" ".direnv" "__pycache__" ".pytest_cache" ] || util.hasSuffix ".pyc" base)
      && !(builtins.elem rel [ "build" "flake.nix" "flake.lock" lockLib.fileName ])
      && !(util.hasPrefix "result" rel && builtins.match ".*/.*" rel == null);
  };

  uniqueId = envOr "KERNEL_BUILDER_UNIQUE_ID" (self.shortRev or (builtins.substring 0 7 (builtins.hashString "sha256" (toString src))));
  kernelCommit = envOr "KERNEL_BUILDER_KERNEL_COMMIT" (self.rev or "");
  kernelDirty = if env "KERNEL_BUILDER_KERNEL_COMMIT" != "" then env "KERNEL_BUILDER_KERNEL_DIRTY" == "1" else false;
  builderCommit = kernelBuilder.rev or (env "KERNEL_BUILDER_SOURCE_COMMIT");
  builderDirty = if kernelBuilder ? rev then "" else env "KERNEL_BUILDER_SOURCE_DIRTY";
  archs = envOr "KERNEL_BUILDER_CUDA_ARCHS" (if cudaArchs == null then "" else builtins.concatStringsSep "," cudaArchs);

  # Systems: those of the matrix kernel-builder pins its Python packages for. Known without
  # nixpkgs, so that evaluating `.#variants` (Nix looks into packages.<system> first) never
  # fetches it.
  pythonLockSystems = builtins.attrNames (builtins.head (builtins.attrValues (builtins.fromJSON (builtins.readFile ./python-packages.lock.json)).sets.kernel-builder));
  systems = builtins.filter (s: builtins.elem s pythonLockSystems) matrix.systems;

  perSystem = system:
    let
      pkgs = nixpkgs.legacyPackages.${system};
      kb = kernelBuilder.packages.${system}.kernel-builder;
      python = import ./python.nix { inherit pkgs system util; };
      locked = lockLib.lockedFor lock { inherit system; python = python.version; };
      keptTorch = torchVersions (util.unique (map (v: v.torch) (builtins.attrValues locked)));
      available = util.filterAttrs (name: v: v.noarch || builtins.elem v.torch keptTorch) locked;
      names = builtins.attrNames available;
      bundleNames = builtins.filter (name: available.${name}.required) names;

      fetchArtifact = artifact: pkgs.fetchurl { inherit (artifact) url sha256; name = artifact.filename; };

      # One derivation per toolchain key (variants sharing a toolchain share it). Its input is
      # only that toolchain's entry of the lock, so locking other variants does not rebuild it.
      toolchains = builtins.listToAttrs (map
        (key: { name = key; value = mkToolchain key lock.toolchains.${key}; })
        (util.unique (map (v: v.key) (builtins.attrValues available))));
      mkToolchain = key: toolchain: pkgs.stdenv.mkDerivation {
        name = util.storeName "kernel-builder-toolchain-${key}";
        nativeBuildInputs = [ kb ];
        wheels = map fetchArtifact toolchain.artifacts;
        toolchainLock = builtins.toJSON { lock-version = 1; build-toml-sha256 = null; variants = { }; toolchains.${key} = toolchain; };
        passAsFile = [ "toolchainLock" ];
        dontUnpack = true;
        dontConfigure = true;
        dontFixup = true;  # a Python environment and a CUDA toolkit: nothing to strip or patch
        buildPhase = ''
          runHook preBuild
          mkdir lock
          cp "$toolchainLockPath" lock/${lockLib.fileName}
          export UV_CACHE_DIR="$TMPDIR/uv-cache" UV_NO_CONFIG=1 UV_OFFLINE=1
          wheelArgs=()
          for wheel in $wheels; do wheelArgs+=(--wheel "$wheel"); done
          kernel-builder toolchains install lock --key ${esc key} "''${wheelArgs[@]}" --prefix "$out" --python ${python.python}/bin/python3
          runHook postBuild
        '';
        installPhase = "runHook preInstall; runHook postInstall";
      };

      mkVariant = name: info:
        let toolchain = toolchains.${info.key}; in
        pkgs.stdenv.mkDerivation {
          inherit name src;
          nativeBuildInputs = [ kb ];
          KERNEL_BUILDER_SOURCE_COMMIT = builderCommit;
          KERNEL_BUILDER_SOURCE_DIRTY = builderDirty;
          PYTHONDONTWRITEBYTECODE = "1";  # no __pycache__ in the variant from its import check
          # No compiler cache: a ccache on PATH (no sandbox) would feed the build from outside the store.
          KERNEL_BUILDER_COMPILER_CACHE = "off";
          dontConfigure = true;
          dontFixup = true;  # the variant is checked as built; stripping would change it
          buildPhase = ''
            runHook preBuild
            export UV_CACHE_DIR="$TMPDIR/uv-cache" UV_NO_CONFIG=1 UV_OFFLINE=1
            kernel-builder build-variant . --variant ${esc name} --toolchain-dir ${toolchain} \
              --out "$TMPDIR/kernel-builder-out" --work "$TMPDIR/kernel-builder-work" \
              --unique-id ${esc uniqueId} --cores "$NIX_BUILD_CORES" \
              ${util.optionalString (kernelCommit != "") "--kernel-commit ${esc kernelCommit}"} ${util.optionalString kernelDirty "--kernel-dirty"} \
              ${util.optionalString (archs != "") "--cuda-archs ${esc archs}"} ${util.optionalString (!doGetKernelCheck) "--no-import-check"}
            runHook postBuild
          '';
          installPhase = ''
            runHook preInstall
            mkdir -p "$out"
            mv "$TMPDIR/kernel-builder-out/"${esc name} "$out/"
            runHook postInstall
          '';
          doInstallCheck = true;
          installCheckPhase = ''
            runHook preInstallCheck
            kernel-builder check-builds "$out"
            kernel-builder check-abi "$out"
            runHook postInstallCheck
          '';
          passthru = { variant = name; inherit toolchain; };
        };

      redistributableVariants = builtins.mapAttrs mkVariant available;

      # Every available variant, also as one derivation (so the attribute set is a package to
      # `nix flake show`/`check`): `.#redistributable` builds them all, `.#redistributable.<v>` one.
      redistributable = pkgs.symlinkJoin {
        name = "${kernelName}-redistributable";
        paths = builtins.attrValues redistributableVariants;
      } // redistributableVariants;

      # bundle: the required variants; plus CARD.md (listing them) where this kernel-builder can fill one.
      bundle = pkgs.symlinkJoin {
        name = "${kernelName}-bundle";
        paths = map (name: redistributableVariants.${name}) bundleNames;
        nativeBuildInputs = [ kb ];
        postBuild = ''
          if kernel-builder fill-card --help >/dev/null 2>&1; then
            kernel-builder fill-card ${src} "$out/CARD.md" --variants-from "$out" --repo-id ${esc repoId}
          fi
        '';
      };

      buildAndCopy = pkgs.runCommand "build-and-copy" { } ''
        mkdir -p "$out/bin"
        cat > "$out/bin/build-and-copy" <<'SCRIPT'
        #!${pkgs.bashInteractive}/bin/bash
        # Copy the bundle's variants into ./build (or $1), each swapped in whole: a copy is made
        # beside it first, then renamed over the old one (as kernel-builder build does).
        set -euo pipefail
        bundle=${bundle}
        dest="''${1:-build}"
        state="$dest/.kernel-builder"
        mkdir -p "$state"
        for variant in "$bundle"/*/; do
          name="$(basename "$variant")"
          staging="$(mktemp -d "$state/staging-$name.XXXXXX")"
          cp -rL "$variant" "$staging/$name"
          chmod -R u+w "$staging/$name"
          aside=""
          if [ -e "$dest/$name" ]; then
            aside="$(mktemp -d "$state/replaced-$name.XXXXXX")"
            rmdir "$aside"
            mv "$dest/$name" "$aside"
          fi
          mv "$staging/$name" "$dest/$name"
          rm -rf "$staging" ''${aside:+"$aside"}
          echo "copied $name"
        done
        if [ -f "$bundle/CARD.md" ]; then
          cp -L "$bundle/CARD.md" "$dest/CARD.md"
          chmod u+w "$dest/CARD.md"
        fi
        exit 0
        SCRIPT
        chmod +x "$out/bin/build-and-copy"
        exit 0
      '';

      # Test packages for shells: pytest (always) and the kernel's pythonCheckInputs.
      pythonPackages = {
        pytest = python.mkEnv { name = "kernel-builder-pytest"; group = "pytest"; };
      };
      checkEnvs = util.unique ([ pythonPackages.pytest ] ++ pythonCheckInputs pythonPackages);

      # Dev shell of one variant: kernel-builder, the variant's toolchain (python with torch and
      # kernels, cmake, ninja; nvcc for CUDA) first on PATH, LOCAL_KERNELS pointing at ./build
      # (or, in a test shell, at the Nix-built variant), and ./.venv, a virtual environment the
      # author can pip into that sees the toolchain's packages (through a .pth file).
      mkShell = { name, info, localKernels }:
        let
          toolchain = toolchains.${info.key};
          cuda = info.toolchain.spec.backend == "cuda";
          sites = [ "${toolchain}/${python.sitePackages}" ] ++ map (p: "${p}/${python.sitePackages}") checkEnvs;
        in
        pkgs.mkShell {
          name = "kernel-builder-${name}";
          packages = [ kb toolchain ];
          KERNEL_BUILDER_VARIANT = name;
          KERNEL_BUILDER_TOOLCHAIN = toolchain;
          # provenance of what `kernel-builder build` makes in the shell (the package has no .git)
          KERNEL_BUILDER_SOURCE_COMMIT = builderCommit;
          KERNEL_BUILDER_SOURCE_DIRTY = builderDirty;
          shellHook = ''
            unset LD_LIBRARY_PATH PYTHONPATH
            ${util.optionalString cuda ''
              export CUDA_HOME=${toolchain}/cuda
              export PATH="$CUDA_HOME/bin:$PATH"
            ''}
            export LOCAL_KERNELS=${esc repoId}=${localKernels}
            if [ ! -x .venv/bin/python ]; then
              ${toolchain}/bin/python -m venv .venv >/dev/null
            fi
            if [ "$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = ${esc python.version} ]; then
              printf '%s\n' ${util.escapeShellArgs sites} > .venv/lib/python${python.version}/site-packages/_kernel_builder_toolchain.pth
              source .venv/bin/activate
            else
              echo "kernel-builder: ./.venv is not a Python ${python.version} environment; not using it" >&2
              export PYTHONPATH=${esc (builtins.concatStringsSep ":" (builtins.tail sites))}
              export PATH="${toolchain}/bin:$PATH"
            fi
            echo "kernel-builder dev shell: ${name} (toolchain ${info.key})" >&2
          '';
        };

      # The "best" variant for the default shells: a bundle variant, CUDA before CPU, newest torch.
      rank = name: (if available.${name}.backend == "cuda" then "1" else "2");
      best =
        let
          candidates = if bundleNames != [ ] then bundleNames else names;
          better = a: b:
            let ra = rank a; rb = rank b; in
            if ra != rb then ra < rb else builtins.compareVersions available.${a}.torch available.${b}.torch > 0;
        in
        if candidates == [ ] then null else builtins.head (builtins.sort better candidates);

      devShells = builtins.mapAttrs (name: info: mkShell { inherit name info; localKernels = "$PWD"; }) available;
      testShells = builtins.mapAttrs (name: info: mkShell { inherit name info; localKernels = "${redistributableVariants.${name}}"; }) available;
    in
    {
      inherit python available bundleNames best;
      packages = {
        inherit bundle redistributable;
        default = bundle;
        build-and-copy = buildAndCopy;
        kernel-builder = kb;
      };
      devShells = devShells
        // util.mapAttrNames (name: "test-${name}") testShells
        // (if best == null then { } else { default = devShells.${best}; test = testShells.${best}; });
      checks = util.filterAttrs (name: _: builtins.elem name bundleNames) redistributableVariants // { inherit bundle; };
      fetches = builtins.mapAttrs
        (name: info: map (a: { inherit (a) name version url sha256 size filename; path = (fetchArtifact a).outPath; }) info.toolchain.artifacts)
        available
        // { kernel-builder = python.fetches "kernel-builder"; pytest = python.fetches "pytest"; };
      unlocked = util.filterAttrs (name: _: util.hasSuffix "-${system}" name || builtins.match "torch-[a-z]+" name != null)
        (lockLib.unlockedFor lock { inherit system; python = python.version; });
      paths = builtins.mapAttrs (name: drv: { out = drv.outPath; drv = drv.drvPath; }) redistributableVariants;
    };

  outputs = util.genAttrs systems perSystem;
in
{
  packages = builtins.mapAttrs (_: o: o.packages) outputs;
  devShells = builtins.mapAttrs (_: o: o.devShells) outputs;
  checks = builtins.mapAttrs (_: o: o.checks) outputs;

  # Data for the kernel-builder CLI (`list-variants`, `build --backend nix`) and for people:
  # every variant the lock lists, and per system what Nix builds and what it fetches.
  variants = lockLib.variantNames lock;
  kernelBuilder = {
    # The Python version toolchains must be locked for, per system (needs no lock).
    pythons = builtins.mapAttrs (system: _: nixpkgs.legacyPackages.${system}.python3.pythonVersion) outputs;
    variants = lockLib.variantNames lock;
    systems = builtins.mapAttrs
      (_: o: {
        python = o.python.version;
        available = builtins.attrNames o.available;
        bundle = o.bundleNames;
        default = o.best;
        inherit (o) unlocked fetches paths;
      })
      outputs;
  };
}
