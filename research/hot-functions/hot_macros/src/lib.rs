//! `#[hot]`: route calls of a free function through an atomic pointer the runtime can repoint
//! to the same function of a newer build (a patch), and register the function in a linker
//! section so the runtime finds it in the host and in every patch.
use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{FnArg, GenericParam, ItemFn, ReturnType, Type, parse_macro_input, spanned::Spanned};

const SUPPORTED: &str = "#[hot] supports free, non-generic, non-async, non-const, non-`extern` \
functions (lifetime parameters allowed) whose arguments and result are concrete types";

fn err(span: proc_macro2::Span, what: &str) -> TokenStream {
    let msg = format!("#[hot] cannot be used on {what}: {SUPPORTED}");
    syn::Error::new(span, msg).to_compile_error().into()
}

/// FNV-1a, stable across compilers (unlike `DefaultHasher`), over the signature's tokens.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The types whose layout must not change under a running host: each argument's type with
/// references stripped (`&mut State` -> `State`), and the result's.
fn referent(t: &Type) -> Option<&Type> {
    match t {
        Type::Reference(r) => referent(&r.elem),
        Type::Ptr(p) => referent(&p.elem),
        Type::Paren(p) => referent(&p.elem),
        Type::Group(g) => referent(&g.elem),
        Type::Slice(s) => referent(&s.elem),
        Type::TraitObject(_) | Type::ImplTrait(_) | Type::Never(_) => None,
        Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => None,
        t => Some(t),
    }
}

/// Every lifetime in `ts` -> `'static`, so a type can be named in a static's initializer.
fn erase_lifetimes(ts: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    use proc_macro2::{Group, Punct, Spacing, TokenTree};
    let mut out = Vec::new();
    let mut it = ts.into_iter().peekable();
    while let Some(tt) = it.next() {
        match tt {
            TokenTree::Punct(p) if p.as_char() == '\'' && p.spacing() == Spacing::Joint => {
                let _name = it.next();
                let mut q = Punct::new('\'', Spacing::Joint);
                q.set_span(p.span());
                out.push(TokenTree::Punct(q));
                out.push(TokenTree::Ident(proc_macro2::Ident::new("static", p.span())));
            }
            TokenTree::Group(g) => {
                let mut ng = Group::new(g.delimiter(), erase_lifetimes(g.stream()));
                ng.set_span(g.span());
                out.push(TokenTree::Group(ng));
            }
            t => out.push(t),
        }
    }
    out.into_iter().collect()
}

fn contains_impl_trait(t: &Type) -> bool {
    let s = quote!(#t).to_string();
    s.contains("impl ") || s.starts_with("impl")
}

#[proc_macro_attribute]
pub fn hot(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return err(proc_macro2::TokenStream::from(attr).span(), "arguments (`#[hot]` takes none)");
    }
    let f = parse_macro_input!(item as ItemFn);
    let sig = &f.sig;
    if let Some(a) = &sig.asyncness { return err(a.span(), "an `async` function"); }
    if let Some(c) = &sig.constness { return err(c.span(), "a `const` function"); }
    if let Some(a) = &sig.abi { return err(a.span(), "an `extern` function"); }
    if let Some(v) = &sig.variadic { return err(v.span(), "a variadic function"); }
    for g in &sig.generics.params {
        match g {
            GenericParam::Lifetime(_) => {}
            _ => return err(g.span(), "a generic function"),
        }
    }
    if let Some(w) = &sig.generics.where_clause { return err(w.span(), "a function with a `where` clause"); }
    let mut arg_names = Vec::new();
    let mut arg_types = Vec::new();
    let mut outer_inputs = Vec::new();
    for (i, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(r) => return err(r.span(), "a method (a function taking `self`)"),
            FnArg::Typed(pt) => {
                if contains_impl_trait(&pt.ty) { return err(pt.ty.span(), "a function with `impl Trait` arguments (that is a generic function)"); }
                // The outer function forwards by position: patterns (`(a, b): (u8, u8)`, `mut x`)
                // stay in the inner function, which keeps the original signature.
                let name = format_ident!("__hot_arg{}", i);
                let ty = &pt.ty;
                outer_inputs.push(quote!(#name: #ty));
                arg_names.push(name);
                arg_types.push((*pt.ty).clone());
            }
        }
    }
    let ret_ty: Option<&Type> = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, t) => {
            if contains_impl_trait(t) { return err(t.span(), "a function returning `impl Trait` (its hidden type differs between builds)"); }
            Some(t)
        }
    };
    let output = &sig.output;
    let unsafety = &sig.unsafety;
    let ident = &sig.ident;
    // Named inside the outer function, where its lifetime parameters are in scope: no `for<>`.
    let fn_ptr_ty = quote!(#unsafety fn(#(#arg_types),*) #output);
    // The same type with every lifetime `'static`, nameable in an item: its `type_name` is the
    // signature with aliases and paths resolved, which the runtime compares (not the tokens).
    let sig_ty = erase_lifetimes(fn_ptr_ty.clone());

    // Signature hash: the tokens of name, argument types and result. The layout hash is
    // computed by rustc (size/align of each referent type) in the entry's const initializer.
    let sig_text = format!("{}({}){}", ident, arg_types.iter().map(|t| quote!(#t).to_string()).collect::<Vec<_>>().join(","), quote!(#output));
    let sig_hash = fnv(&sig_text);
    // The guard's view of layout: size and alignment of what each argument and the result
    // point to (`&mut State` -> `State`, `&[T]` -> `T`); unsized referents (`str`, `dyn`) skipped.
    let layout_types: Vec<proc_macro2::TokenStream> = arg_types.iter().chain(ret_ty)
        .filter_map(referent).map(|t| erase_lifetimes(quote!(#t))).collect();

    let attrs = &f.attrs;
    let vis = &f.vis;
    let generics = &sig.generics;
    let inner_inputs = &sig.inputs;
    let block = &f.block;
    let name_str = ident.to_string();

    let inner = format_ident!("__hot_inner_{}", ident);
    quote! {
        // The original body, unchanged, beside the function (a nested fn could not reuse the
        // function's lifetime names); a patch's copy of it is what the slot is repointed to.
        #[doc(hidden)]
        #[allow(non_snake_case)]
        #[inline(never)]
        #unsafety fn #inner #generics (#inner_inputs) #output #block

        #(#attrs)*
        #vis #unsafety fn #ident #generics (#(#outer_inputs),*) #output {
            static __HOT_SLOT: ::hot_rt::Slot = ::hot_rt::Slot::new(#inner as *mut ());

            #[used]
            #[unsafe(link_section = "dylib_dev_hot")]
            static __HOT_ENTRY: ::hot_rt::HotEntry = ::hot_rt::HotEntry {
                magic: ::hot_rt::MAGIC,
                path: concat!(module_path!(), "::", #name_str),
                sig_hash: #sig_hash,
                sig_text: #sig_text,
                sig_type: {
                    fn __sig_type() -> &'static str { ::core::any::type_name::<#sig_ty>() }
                    __sig_type
                },
                layout_hash: {
                    let h = ::hot_rt::LAYOUT_SEED;
                    #( let h = ::hot_rt::mix_layout(h, ::core::mem::size_of::<#layout_types>(), ::core::mem::align_of::<#layout_types>()); )*
                    h
                },
                slot: &__HOT_SLOT,
                inner: #inner as *const (),
            };

            let __f: #fn_ptr_ty = unsafe { ::core::mem::transmute::<*mut (), #fn_ptr_ty>(__HOT_SLOT.load()) };
            #unsafety { __f(#(#arg_names),*) }
        }
    }
    .into()
}
