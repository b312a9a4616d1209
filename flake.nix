{
  description = "kernel-builder: build PyTorch compute kernels into Hub-ready variants";

  # Compilers and the standard environment come from nixpkgs (pinned in flake.lock). Offline
  # test machines replace it with a stand-in (docs/nix.md); `lib` needs no input at all.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      util = import ./nix/util.nix;
      version = (builtins.fromTOML (builtins.readFile ./pyproject.toml)).project.version;
      # kernel-builder's Python package: its source files only (not the tests, docs or examples).
      root = toString ./.;
      source = builtins.path {
        path = ./.;
        name = "kernel-builder-source";
        filter = file: type:
          let rel = util.removePrefix (root + "/") (toString file); in
          builtins.elem rel [ "pyproject.toml" "README.md" "builder" "templates" "nix" ]
          || builtins.any (dir: util.hasPrefix "${dir}/" rel) [ "builder" "templates" "nix" ];
      };
      pythonLock = builtins.fromJSON (builtins.readFile ./nix/python-packages.lock.json);
      # The systems kernel-builder pins its Python packages for. (Known without nixpkgs, so that
      # `nix eval .#lib...`, which looks into packages.<system> first, never fetches it.)
      systems = builtins.attrNames (builtins.head (builtins.attrValues pythonLock.sets.kernel-builder));
      perSystem = system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          python = import ./nix/python.nix { inherit pkgs system util; };
        in
        rec {
          kernel-builder = import ./nix/kernel-builder.nix { inherit pkgs python version; src = source; };
          default = kernel-builder;
        };
    in
    {
      # The variant matrix (pure data, evaluates without any input) and the kernel flake library.
      lib = import ./nix/lib.nix { } // {
        genKernelFlakeOutputs = import ./nix/kernel.nix { inherit nixpkgs; kernelBuilder = self; };
      };
      packages = util.genAttrs systems perSystem;
      checks = util.genAttrs systems (system: { kernel-builder = self.packages.${system}.kernel-builder; });
    };
}
