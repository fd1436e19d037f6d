//! Nothing to see: this package holds the nnc facade's integration tests (`tests/`, a link to
//! the repository's `tests/`) and its MNIST benchmark, so that their dependencies (insta,
//! trybuild, criterion) are not built with every example of the root package. trybuild wants
//! a library in the package under test, so there is this empty one.
