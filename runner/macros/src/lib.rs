//! Macros of `dylib-dev-runtime`, re-exported from it (use them as `dylib_dev_runtime::Layout`).
//!
//! One module per macro. A derive is the only way on stable Rust to see an enum's definition
//! (variant order, discriminants, payloads): nothing at run time tells them without a value.

mod layout;

use proc_macro::TokenStream;

/// Describes a struct's fields or an enum's variants to the layout guard
/// (`dylib_dev_runtime::DescribeLayout`); a type listed in `layout!` without fields is then
/// compared by this description, not by size and alignment alone.
#[proc_macro_derive(Layout)]
pub fn derive_layout(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    layout::expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
