//! Macros of `dylib-dev-runtime`, re-exported from it (use them as `dylib_dev_runtime::Layout`).
//!
//! One module per macro. A derive is the only way on stable Rust to see an enum's definition
//! (variant order, discriminants, payloads): nothing at run time tells them without a value.

mod hot;
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

/// Makes a free function hot: under `dylib-dev watch`, an edit of it (or of code it calls) takes
/// effect at its next call, in the running process. Re-exported as `dylib_dev_runtime::hot`
/// (`#[dylib_dev::hot]` with the runtime as the `dylib_dev` dependency). Elsewhere (`cargo run`,
/// release builds) the function is left exactly as written.
#[proc_macro_attribute]
pub fn hot(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::ItemFn);
    hot::expand(attr.into(), item)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
