# Small helpers on builtins only, so the library needs nothing from nixpkgs' `lib` (and behaves
# the same with real nixpkgs and with the test shim).
rec {
  # A string as one shell word: 'it'\''s'.
  escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
  escapeShellArgs = list: builtins.concatStringsSep " " (map escapeShellArg list);

  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  filterAttrs = pred: set: builtins.listToAttrs (builtins.concatMap
    (name: if pred name set.${name} then [{ inherit name; value = set.${name}; }] else [ ])
    (builtins.attrNames set));
  mapAttrNames = f: set: builtins.listToAttrs (map (name: { name = f name; value = set.${name}; }) (builtins.attrNames set));
  unique = list: builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ] list;
  optional = cond: x: if cond then [ x ] else [ ];
  optionalString = cond: s: if cond then s else "";
  hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
  removePrefix = prefix: s: if hasPrefix prefix s then builtins.substring (builtins.stringLength prefix) (builtins.stringLength s) s else s;
  hasSuffix = suffix: s:
    let n = builtins.stringLength s; m = builtins.stringLength suffix;
    in n >= m && builtins.substring (n - m) m s == suffix;

  # A valid store path name from any string (Nix allows [A-Za-z0-9+._?=-], not a leading dot).
  storeName = s:
    let
      chars = builtins.filter (c: builtins.isString c && c != "") (builtins.split "" s);
      clean = builtins.concatStringsSep "" (map (c: if builtins.match "[A-Za-z0-9+._?=-]" c != null then c else "-") chars);
    in
    if hasPrefix "." clean then "_" + clean else clean;

  # Environment variables are only visible to `--impure` evaluations; "" otherwise.
  impureEnv = name: builtins.getEnv name;
}
