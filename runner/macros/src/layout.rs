//! `#[derive(Layout)]`: an impl of `dylib_dev_runtime::DescribeLayout` built from the definition.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Data, DeriveInput};

/// The impl for `input`, or an error for unions (their fields overlap: nothing to compare by name).
pub(crate) fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let rt = quote!(::dylib_dev_runtime);
    let (fields, variants) = match &input.data {
        Data::Struct(data) => {
            let fields = data.fields.iter().enumerate().map(|(i, f)| {
                let member = match &f.ident {
                    Some(name) => quote!(#name),
                    None => syn::Index::from(i).into_token_stream(),
                };
                let name = field_name(f, i);
                let ty = &f.ty;
                quote! {
                    #rt::FieldLayout {
                        name: ::std::string::String::from(#name),
                        ty: ::std::string::String::from(::std::any::type_name::<#ty>()),
                        offset: ::std::mem::offset_of!(Self, #member),
                    }
                }
            });
            (
                quote!(::std::option::Option::Some(::std::vec![#(#fields),*])),
                quote!(::std::option::Option::None),
            )
        }
        Data::Enum(data) => {
            // `Self::V as i128` is only allowed when no variant has a payload.
            let fieldless = data.variants.iter().all(|v| v.fields.is_empty());
            let variants = data.variants.iter().map(|v| {
                let vident = &v.ident;
                let name = vident.to_string();
                // Text of the written discriminant; tabs and newlines would break the encoding.
                let discriminant = v
                    .discriminant
                    .as_ref()
                    .map(|(_, e)| e.to_token_stream().to_string().replace(['\t', '\n'], " "))
                    .unwrap_or_default();
                let value = if fieldless {
                    quote!(::std::option::Option::Some(Self::#vident as i128))
                } else {
                    quote!(::std::option::Option::None)
                };
                let payload = v.fields.iter().enumerate().map(|(i, f)| {
                    let name = field_name(f, i);
                    let ty = &f.ty;
                    quote! {
                        #rt::PayloadField {
                            name: ::std::string::String::from(#name),
                            ty: ::std::string::String::from(::std::any::type_name::<#ty>()),
                        }
                    }
                });
                quote! {
                    #rt::VariantLayout {
                        name: ::std::string::String::from(#name),
                        discriminant: ::std::string::String::from(#discriminant),
                        value: #value,
                        payload: ::std::vec![#(#payload),*],
                    }
                }
            });
            (
                quote!(::std::option::Option::None),
                quote!(::std::option::Option::Some(::std::vec![#(#variants),*])),
            )
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span,
                "`Layout` describes structs and enums, not unions",
            ));
        }
    };
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #rt::DescribeLayout for #ident #ty_generics #where_clause {
            fn describe() -> #rt::TypeLayout {
                #rt::TypeLayout {
                    name: ::std::string::String::from(::std::any::type_name::<Self>()),
                    size: ::std::mem::size_of::<Self>(),
                    align: ::std::mem::align_of::<Self>(),
                    fields: #fields,
                    variants: #variants,
                }
            }
        }
    })
}

/// A field's name as the guard reports it: its identifier, or its index in a tuple.
fn field_name(field: &syn::Field, index: usize) -> String {
    field
        .ident
        .as_ref()
        .map_or_else(|| index.to_string(), ToString::to_string)
}
