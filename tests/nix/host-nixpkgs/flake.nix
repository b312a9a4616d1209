{
  description = "TEST ONLY: a stand-in for nixpkgs built from this machine's own tools (no network, no nixpkgs)";

  # kernel-builder's flake takes its standard environment and Python from the input named
  # `nixpkgs`. Where nixpkgs cannot be fetched (an offline CI machine), the tests replace that
  # input with this flake:
  #
  #   nix build --offline --no-write-lock-file \
  #     --override-input nixpkgs path:<this directory>                  (the kernel-builder flake)
  #     --override-input kernel-builder/nixpkgs path:<this directory>   (a kernel's flake)
  #
  # It provides only what kernel-builder's Nix code uses, with nixpkgs' names and calling
  # conventions, on top of plain `derivation`: stdenv.mkDerivation (with the usual phases and
  # hooks), mkShell, runCommand, symlinkJoin, fetchurl (a fixed-output builtin:fetchurl
  # derivation), python3 (the host's /usr/bin/python3.11, with python3.pythonVersion) and
  # bashInteractive. Builds see the host's compilers, CMake and Ninja through PATH; nothing of
  # that is tracked by Nix (closures are empty), which is why this is a test harness and not
  # a way to build releases. See docs/nix.md ("What is exercised offline").
  #
  # Packages exist for x86_64-linux (built on this machine) and aarch64-linux (evaluation
  # only: Nix refuses to build them here), so flakes' per-system outputs evaluate for both.
  outputs = { self }:
    let
      forSystem = system: let
      hostPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
      stdenvDir = ./stdenv;  # holds `setup`: phases, runHook, PATH from the inputs

      # Attributes that are Nix-side only (never reach the builder's environment).
      evalOnly = [ "passthru" "meta" ];

      mkDerivation = args:
        let
          name = args.name or "${args.pname}-${args.version}";
          env = removeAttrs args evalOnly;
          drv = derivation (env // {
            inherit name system;
            builder = "/bin/bash";
            args = [ "-e" ./builder.sh ];
            stdenv = stdenvDir;
            outputs = [ "out" ];
            inherit hostPath;
          });
        in
        drv // (args.passthru or { }) // { meta = args.meta or { }; };

      runCommand = name: env: buildCommand:
        mkDerivation (env // { inherit name buildCommand; });

      mkShell = args:
        let
          packages = args.packages or [ ];
          inputsFrom = args.inputsFrom or [ ];
          fromInputs = builtins.concatMap (d: (d.nativeBuildInputs or [ ]) ++ (d.buildInputs or [ ])) inputsFrom;
        in
        mkDerivation ((removeAttrs args [ "packages" "inputsFrom" ]) // {
          name = args.name or "nix-shell";
          nativeBuildInputs = packages ++ (args.nativeBuildInputs or [ ]) ++ fromInputs;
          buildCommand = "echo 'a shell environment; use nix develop' > $out";
        });

      symlinkJoin = { name, paths, postBuild ? "", ... }@args:
        runCommand name (removeAttrs args [ "name" "paths" "postBuild" ] // { inherit paths; }) ''
          mkdir -p $out
          for p in $paths; do
            cp -rs --no-preserve=mode "$p/." "$out/"
          done
          ${postBuild}
        '';

      # Like nixpkgs' fetchurl for a single URL: a fixed-output derivation (flat sha256), built
      # by Nix's own downloader; its store path only depends on the name and the hash, so a file
      # added with `nix-store --add-fixed sha256 <name>` satisfies it without any download.
      fetchurl = { url, sha256 ? null, hash ? null, name ? baseNameOf url, executable ? false, ... }:
        derivation {
          inherit name url executable;
          builder = "builtin:fetchurl";
          system = "builtin";
          urls = [ url ];
          unpack = false;
          outputHashMode = if executable then "recursive" else "flat";
          outputHashAlgo = if hash != null then "" else "sha256";
          outputHash = if hash != null then hash else sha256;
          preferLocalBuild = true;
          impureEnvVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy" ];
        };

      # The host interpreter (Debian's python3.11 with its headers and venv module).
      python3 = (runCommand "python3-3.11-host" { } ''
        if [ ! -x /usr/bin/python3.11 ]; then
          echo "the host nixpkgs shim needs /usr/bin/python3.11 (Debian 12: apt-get install python3-dev python3-venv)" >&2
          exit 1
        fi
        mkdir -p $out/bin
        ln -s /usr/bin/python3.11 $out/bin/python3.11
        ln -s python3.11 $out/bin/python3
        ln -s python3.11 $out/bin/python
        exit 0
      '') // { pythonVersion = "3.11"; executable = "python3.11"; };

      bashInteractive = runCommand "bash-interactive-host" { } ''
        mkdir -p $out/bin
        ln -s /bin/bash $out/bin/bash
        ln -s /bin/bash $out/bin/sh
        exit 0
      '';

      in
      {
        inherit system fetchurl runCommand mkShell symlinkJoin python3 bashInteractive;
        stdenv = { inherit mkDerivation system; shell = "/bin/bash"; };
        hostNixpkgsShim = true;
      };
    in
    {
      legacyPackages = {
        x86_64-linux = forSystem "x86_64-linux";
        aarch64-linux = forSystem "aarch64-linux";
      };
    };
}
