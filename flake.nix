{
  description = "kernel-builder: build PyTorch compute kernels into Hub-ready variants";

  # No inputs yet: the library below is pure data (the variant matrix shared with the Python
  # CLI), so the flake evaluates offline and its lock file is trivial.
  outputs = { self }: {
    lib = import ./nix/lib.nix { };
  };
}
