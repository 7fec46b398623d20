//! Registry receiver of pseudoform (being built).
