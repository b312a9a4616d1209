# The builder of every shim derivation (run by /bin/bash -e): nixpkgs' default builder in small.
source "$stdenv/setup"
genericBuild
