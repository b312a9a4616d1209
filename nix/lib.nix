# The Nix side of the variant matrix. It reads the same data file as kernel-builder's Python
# code (nix/build-matrix.json) and only exposes it; every decision about a kernel (which
# variants apply, what their names are) is made by the kernel-builder CLI.
{ }:
let
  matrix = builtins.fromJSON (builtins.readFile ./build-matrix.json);
  unique = list: builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ] list;
in
{
  inherit matrix;
  buildSets = matrix.buildSets;
  requiredBuildSets = builtins.filter (set: set.required) matrix.buildSets;
  systems = unique (builtins.concatMap (set: set.systems) matrix.buildSets);
  torchVersions = unique (map (set: set.torch) matrix.buildSets);
}
