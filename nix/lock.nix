# A kernel's toolchain lock (kernel-builder.lock.json, written by `kernel-builder lock`), as the
# Nix side sees it. Which variants a kernel gets and which files each toolchain is made of are
# decided in Python and recorded in the lock; this file only reads and checks it.
{ util }:
rec {
  fileName = "kernel-builder.lock.json";
  hint = "run `kernel-builder lock` in the kernel directory (kernel-builder build --backend nix does it for you) and commit ${fileName}";

  # The lock next to `path`/build.toml. Evaluation fails, saying what to do, when it is missing,
  # of another format, or was made for another build.toml.
  read = path:
    let
      lockFile = path + "/${fileName}";
      buildToml = path + "/build.toml";
    in
    if !builtins.pathExists buildToml then
      throw "kernel-builder: no build.toml in the kernel flake (${toString path})"
    else if !builtins.pathExists lockFile then
      throw "kernel-builder: ${fileName} is missing next to build.toml: ${hint}"
    else
      let
        lock = builtins.fromJSON (builtins.readFile lockFile);
        expected = builtins.hashFile "sha256" buildToml;
        recorded = lock."build-toml-sha256" or null;
      in
      if (lock."lock-version" or null) != 1 then
        throw "kernel-builder: ${fileName} has lock-version ${builtins.toJSON (lock."lock-version" or null)}, this kernel-builder reads version 1: ${hint}"
      else if recorded != expected then
        throw "kernel-builder: ${fileName} was made for another build.toml (build-toml-sha256 ${builtins.toJSON recorded}, build.toml has ${expected}): ${hint}"
      else
        lock;

  # Every variant the lock lists (what the matrix gives the kernel), sorted.
  variantNames = lock: builtins.attrNames (lock.variants or { });

  # The variants with a locked toolchain for `python` (X.Y) on `system`:
  # name -> { name, required, backend, noarch, torch, key, toolchain }.
  lockedFor = lock: { system, python }:
    let
      entries = lock.variants or { };
      info = name:
        let
          entry = entries.${name};
          key = entry.toolchains.${python} or null;
          toolchain = if key == null then null else lock.toolchains.${key} or null;
        in
        if toolchain == null || toolchain.spec.system != system then null else {
          inherit name key toolchain;
          required = entry.required or false;
          backend = entry.backend or toolchain.spec.backend;
          noarch = builtins.match "torch-[a-z]+" name != null;  # torch-cpu, torch-cuda, ...: Python only
          torch = toolchain.spec.torch;
        };
      found = builtins.filter (x: x != null) (map info (builtins.attrNames entries));
    in
    builtins.listToAttrs (map (v: { name = v.name; value = v; }) found);

  # Why the other variants have no toolchain for `python` (X.Y): name -> reason.
  unlockedFor = lock: { system, python }:
    let
      entries = lock.variants or { };
      locked = lockedFor lock { inherit system python; };
      reason = name:
        let entry = entries.${name}; in
        entry.unreachable.${python} or (
          if entry.toolchains ? ${python} then "its toolchain is for another system"
          else if entry.toolchains == { } then "no toolchain in ${fileName}: run `kernel-builder lock` on a machine of the variant's system (it locks the CPU and CUDA toolchains the package indexes provide)"
          else "locked for Python ${builtins.concatStringsSep ", " (builtins.attrNames entry.toolchains)}, not ${python} (nixpkgs' python3)");
    in
    builtins.listToAttrs (map (name: { inherit name; value = reason name; })
      (builtins.filter (name: !(locked ? ${name})) (builtins.attrNames entries)));
}
