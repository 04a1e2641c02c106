//! `#[hot]`: a free function whose calls the runtime can repoint to the same function of a newer
//! build of its crate (a patch), in the running process.
//!
//! Under `dylib-dev` (its rustc wrapper sets [`PATCHABLE_ENV`] on the crates it builds) the body
//! moves to a sibling `__hot_inner_<name>`, and the function keeps its name and signature but
//! calls through a per-function slot (one atomic load, one indirect call). One entry per function
//! in the `dylib_dev_hot` link section tells the runtime the function's path, signature, the
//! layout of what it takes and returns, its slot and its body, in the host and in every patch.
//! Anywhere else (`cargo build`, `cargo run`, rust-analyzer, release builds) the function is
//! emitted unchanged: a direct call, nothing added.
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{FnArg, GenericParam, ItemFn, ReturnType, Type};

/// Set by dylib-dev's rustc wrapper on the rustc of every workspace crate of a dynamic build:
/// expand `#[hot]` functions into patchable ones.
pub const PATCHABLE_ENV: &str = "DYLIB_DEV_HOT_PATCHABLE";

const SUPPORTED: &str = "`#[dylib_dev::hot]` supports free functions (not methods) that are not \
generic, `async`, `const` or `extern`; lifetime parameters and `unsafe fn` are fine. Keep the \
hot function a plain `fn` and call generic or async code from it";

fn unsupported(span: Span, what: &str) -> syn::Error {
    syn::Error::new(
        span,
        format!("#[hot] cannot be used on {what}: {SUPPORTED}"),
    )
}

/// The `#[hot]` attribute applied to `item`.
pub fn expand(attr: TokenStream, item: ItemFn) -> syn::Result<TokenStream> {
    if !attr.is_empty() {
        return Err(syn::Error::new(attr.span(), "#[hot] takes no arguments"));
    }
    let sig = &item.sig;
    if let Some(a) = &sig.asyncness {
        return Err(unsupported(a.span(), "an `async` function"));
    }
    if let Some(c) = &sig.constness {
        return Err(unsupported(c.span(), "a `const` function"));
    }
    if let Some(a) = &sig.abi {
        return Err(unsupported(a.span(), "an `extern` function"));
    }
    if let Some(v) = &sig.variadic {
        return Err(unsupported(v.span(), "a variadic function"));
    }
    for g in &sig.generics.params {
        if !matches!(g, GenericParam::Lifetime(_)) {
            return Err(unsupported(g.span(), "a generic function"));
        }
    }
    if let Some(w) = &sig.generics.where_clause {
        return Err(unsupported(w.span(), "a function with a `where` clause"));
    }
    let mut arg_names = Vec::new();
    let mut arg_types = Vec::new();
    for (i, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(r) => {
                return Err(unsupported(r.span(), "a method (a function taking `self`)"));
            }
            FnArg::Typed(pt) => {
                if has_impl_trait(&pt.ty) {
                    return Err(unsupported(
                        pt.ty.span(),
                        "a function with `impl Trait` arguments (a generic function)",
                    ));
                }
                arg_names.push(format_ident!("__hot_arg{}", i));
                arg_types.push(&*pt.ty);
            }
        }
    }
    let result: Option<&Type> = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, t) => {
            if has_impl_trait(t) {
                return Err(unsupported(
                    t.span(),
                    "a function returning `impl Trait` (its hidden type differs between builds)",
                ));
            }
            Some(t)
        }
    };
    if std::env::var_os(PATCHABLE_ENV).is_none() {
        return Ok(quote!(#item));
    }
    let runtime = runtime_path(sig.ident.span())?;

    let ItemFn {
        attrs, vis, block, ..
    } = &item;
    let output = &sig.output;
    // `unsafe` or nothing (a `safe fn` only exists in `extern` blocks).
    let unsafety = matches!(sig.safety, syn::Safety::Unsafe(_)).then(|| quote!(unsafe));
    let generics = &sig.generics;
    let ident = &sig.ident;
    let name = ident.to_string();
    let inner_inputs = &sig.inputs;
    let outer_inputs = arg_names
        .iter()
        .zip(&arg_types)
        .map(|(n, t)| quote!(#n: #t));
    let outer_inputs = quote!(#(#outer_inputs),*);
    let inner = format_ident!("__hot_inner_{}", ident);
    let first = format_ident!("__hot_first_{}", ident);
    let slot = format_ident!("__HOT_SLOT_{}", ident);
    let entry = format_ident!("__HOT_ENTRY_{}", ident);
    // Named inside functions that have the lifetime parameters in scope.
    let fn_ptr = quote!(#unsafety fn(#(#arg_types),*) #output);
    // The same type with every named lifetime `'static`, nameable in a static: its `type_name`
    // (aliases and paths resolved) is what the runtime compares, not the tokens.
    let signature = erase_lifetimes(fn_ptr.clone());
    // What the arguments and the result are or point to (`&mut State` -> `State`), and the types
    // they are made of (`ResMut<Stats>` -> `Stats` too): their size and alignment must not change
    // under a running host.
    let mut shapes = Vec::new();
    for t in arg_types.iter().copied().chain(result) {
        layout_types(t, &mut shapes);
    }
    let types = shapes.into_iter().map(|t| {
        let t = erase_lifetimes(quote!(#t));
        let shown = t.to_string();
        quote! {
            #runtime::__hot::TypeSize {
                name: #shown,
                size: ::core::mem::size_of::<#t>(),
                align: ::core::mem::align_of::<#t>(),
            }
        }
    });
    let call = quote! {
        let __hot_fn: #fn_ptr = unsafe { ::core::mem::transmute::<*mut (), #fn_ptr>(#slot.load()) };
        #unsafety { __hot_fn(#(#arg_names),*) }
    };
    Ok(quote! {
        // The body as written; a patch's copy of it is what the slot is repointed to. A sibling,
        // not nested: a nested fn could not name the function's lifetime parameters.
        #[doc(hidden)]
        #[allow(non_snake_case, clippy::too_many_arguments)]
        #[inline(never)]
        #unsafety fn #inner #generics (#inner_inputs) #output #block

        // The slot's first value: starts the runtime (once per process), then points the slot
        // at the body and calls whatever the slot holds by then.
        #[doc(hidden)]
        #[allow(non_snake_case, clippy::too_many_arguments)]
        #[cold]
        #[inline(never)]
        #unsafety fn #first #generics (#outer_inputs) #output {
            #runtime::__hot::start();
            #slot.first_call(#first as *mut (), #inner as *mut ());
            #call
        }

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        static #slot: #runtime::__hot::Slot = #runtime::__hot::Slot::new(#first as *mut ());

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[used]
        #[cfg_attr(target_os = "linux", unsafe(link_section = "dylib_dev_hot"))]
        static #entry: #runtime::__hot::Entry = #runtime::__hot::Entry {
            magic: #runtime::__hot::MAGIC,
            path: ::core::concat!(::core::module_path!(), "::", #name),
            signature: {
                fn signature() -> &'static str {
                    ::core::any::type_name::<#signature>()
                }
                signature
            },
            types: &[#(#types),*],
            slot: &#slot,
            inner: #inner as *const (),
        };

        #(#attrs)*
        #[allow(clippy::too_many_arguments)]
        #vis #unsafety fn #ident #generics (#outer_inputs) #output {
            #call
        }
    })
}

/// How the calling crate names dylib-dev-runtime (`dylib_dev` when it depends on it under that
/// name, as `init` and the templates do).
fn runtime_path(span: Span) -> syn::Result<TokenStream> {
    use proc_macro_crate::{FoundCrate, crate_name};
    match crate_name("dylib-dev-runtime") {
        Ok(FoundCrate::Itself) => Ok(quote!(crate)),
        Ok(FoundCrate::Name(name)) => {
            let name = syn::Ident::new(&name, span);
            Ok(quote!(::#name))
        }
        Err(e) => Err(syn::Error::new(
            span,
            format!(
                "#[hot] needs dylib-dev-runtime as a dependency of this crate ({e}): add \
                 `dylib_dev = {{ package = \"dylib-dev-runtime\", version = \"0.1\" }}` to its \
                 [dependencies] (or run `dylib-dev init`)"
            ),
        )),
    }
}

/// The type whose layout matters for an argument or result: references and pointers stripped;
/// `None` for unsized referents (`str`, `Path`, `dyn Trait`), which have no size to compare.
fn referent(t: &Type) -> Option<&Type> {
    const UNSIZED: [&str; 4] = ["str", "Path", "OsStr", "CStr"];
    match t {
        Type::Reference(r) => referent(&r.elem),
        Type::Ptr(p) => referent(&p.elem),
        Type::Paren(p) => referent(&p.elem),
        Type::Group(g) => referent(&g.elem),
        Type::Slice(s) => referent(&s.elem),
        Type::TraitObject(_) | Type::ImplTrait(_) | Type::Never(_) | Type::Infer(_) => None,
        Type::Tuple(t) if t.elems.is_empty() => None,
        Type::Path(p)
            if p.qself.is_none()
                && p.path.segments.last().is_some_and(|s| {
                    s.arguments.is_none() && UNSIZED.contains(&&*s.ident.to_string())
                }) =>
        {
            None
        }
        t => Some(t),
    }
}

/// The types whose size and alignment a hot function depends on, for an argument or result `t`
/// (appended to `out`, each once): its [`referent`], and the types in that one's generic arguments,
/// tuple elements and array element, recursively. A wrapper's own size rarely says anything
/// (`ResMut<Stats>` is two pointers whatever `Stats` holds), so `ResMut<Stats>` gives itself and
/// `Stats`, `Query<(&Ball, &mut Position), With<Ball>>` gives the query, the tuple, `Ball`,
/// `Position` and `With<Ball>`.
fn layout_types<'a>(t: &'a Type, out: &mut Vec<&'a Type>) {
    let Some(t) = referent(t) else {
        return;
    };
    let shown = |t: &Type| quote!(#t).to_string();
    if out.iter().any(|o| shown(o) == shown(t)) {
        return;
    }
    out.push(t);
    match t {
        Type::Path(p) if p.qself.is_none() => {
            for segment in &p.path.segments {
                if let syn::PathArguments::AngleBracketed(args) = &segment.arguments {
                    for arg in &args.args {
                        if let syn::GenericArgument::Type(inner) = arg {
                            layout_types(inner, out);
                        }
                    }
                }
            }
        }
        Type::Tuple(tuple) => {
            for inner in &tuple.elems {
                layout_types(inner, out);
            }
        }
        Type::Array(array) => layout_types(&array.elem, out),
        _ => {}
    }
}

/// Every named lifetime in `tokens` as `'static`, so the type can be named in a static.
fn erase_lifetimes(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Group, Punct, Spacing, TokenTree};
    let mut out = Vec::new();
    let mut it = tokens.into_iter();
    while let Some(tt) = it.next() {
        match tt {
            TokenTree::Punct(p) if p.as_char() == '\'' && p.spacing() == Spacing::Joint => {
                let _name = it.next();
                let mut quote_mark = Punct::new('\'', Spacing::Joint);
                quote_mark.set_span(p.span());
                out.push(TokenTree::Punct(quote_mark));
                out.push(TokenTree::Ident(proc_macro2::Ident::new(
                    "static",
                    p.span(),
                )));
            }
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), erase_lifetimes(g.stream()));
                group.set_span(g.span());
                out.push(TokenTree::Group(group));
            }
            t => out.push(t),
        }
    }
    out.into_iter().collect()
}

fn has_impl_trait(t: &Type) -> bool {
    struct Finder(bool);
    impl<'a> syn::visit::Visit<'a> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'a syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut f = Finder(false);
    syn::visit::Visit::visit_type(&mut f, t);
    f.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes(ty: &str) -> Vec<String> {
        let t: Type = syn::parse_str(ty).unwrap();
        let mut out = Vec::new();
        layout_types(&t, &mut out);
        out.iter().map(|t| quote!(#t).to_string()).collect()
    }

    #[test]
    fn wrappers_give_the_types_they_hold() {
        assert_eq!(shapes("&mut State"), ["State"]);
        assert_eq!(shapes("ResMut<Stats>"), ["ResMut < Stats >", "Stats"]);
        assert_eq!(
            shapes("Query<(&Ball, &mut Position), With<Ball>>"),
            [
                "Query < (& Ball , & mut Position) , With < Ball > >",
                "(& Ball , & mut Position)",
                "Ball",
                "Position",
                "With < Ball >"
            ]
        );
        assert_eq!(
            shapes("Local<'a, [u64; 4]>"),
            ["Local < 'a , [u64 ; 4] >", "[u64 ; 4]", "u64"]
        );
        assert_eq!(
            shapes("Query<(), With<Ball>>"),
            ["Query < () , With < Ball > >", "With < Ball >", "Ball"]
        );
    }

    #[test]
    fn unsized_and_opaque_types_are_left_out() {
        assert_eq!(shapes("&str"), Vec::<String>::new());
        assert_eq!(shapes("Box<dyn Fn()>"), ["Box < dyn Fn () >"]);
        assert_eq!(
            shapes("Option<&std::path::Path>"),
            ["Option < & std :: path :: Path >"]
        );
        assert_eq!(shapes("<T as Tr>::Out"), ["< T as Tr > :: Out"]);
    }
}
