//! The layout guard: a fingerprint of the types host and logic pass to each other, compared before
//! new code may run on old values.
//!
//! The logic library exports the layout of its view of the types with [`layout!`](crate::layout)
//! (an exported function, `dylib_dev_layout`); the host declares its own view with the same list
//! in [`hot_module!`](crate::hot_module). Before a version is swapped in, the runtime compares the
//! new library's layout with the host's view and with the running version's: any difference
//! refuses the swap, naming the type and what changed, and the runner restarts the host.
//!
//! For each type: its name ([`type_name`](std::any::type_name)), size and alignment; for the
//! braced form `State { a, b }`, each field's name, type name and offset
//! ([`offset_of!`](std::mem::offset_of)). The braced form must name every field: the macro
//! destructures the type without `..`, so a field added without being listed is a compile error,
//! not a silent hole in the check.

use std::fmt;

/// The layout of a list of types, as one side of the boundary compiled them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// The types, in the order they were listed.
    pub types: Vec<TypeLayout>,
}

/// One type's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeLayout {
    /// [`std::any::type_name`] of the type.
    pub name: String,
    /// `size_of`.
    pub size: usize,
    /// `align_of`.
    pub align: usize,
    /// The fields, for types listed with their fields.
    pub fields: Option<Vec<FieldLayout>>,
}

/// One field of a [`TypeLayout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldLayout {
    /// The field's name (`0`, `1`, ... for tuple structs).
    pub name: String,
    /// [`std::any::type_name`] of the field's type.
    pub ty: String,
    /// `offset_of`.
    pub offset: usize,
}

/// Name of the function [`layout!`](crate::layout) exports from a library.
pub const LAYOUT_SYMBOL: &str = "dylib_dev_layout";

impl Layout {
    /// The layout as text (what a library exports): a `T` line per type, an `F` line per field,
    /// tab-separated (type names hold spaces and commas, never tabs or newlines).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for t in &self.types {
            out.push_str(&format!("T\t{}\t{}\t{}\n", t.name, t.size, t.align));
            for f in t.fields.iter().flatten() {
                out.push_str(&format!("F\t{}\t{}\t{}\n", f.name, f.ty, f.offset));
            }
        }
        out
    }

    /// Parses [`Layout::encode`]'s text; `None` if it is not such text.
    pub fn decode(text: &str) -> Option<Layout> {
        let mut types: Vec<TypeLayout> = Vec::new();
        for line in text.lines() {
            let parts: Vec<&str> = line.split('\t').collect();
            match parts.as_slice() {
                ["T", name, size, align] => types.push(TypeLayout {
                    name: name.to_string(),
                    size: size.parse().ok()?,
                    align: align.parse().ok()?,
                    fields: None,
                }),
                ["F", name, ty, offset] => types
                    .last_mut()?
                    .fields
                    .get_or_insert_with(Vec::new)
                    .push(FieldLayout {
                        name: name.to_string(),
                        ty: ty.to_string(),
                        offset: offset.parse().ok()?,
                    }),
                _ => return None,
            }
        }
        Some(Layout { types })
    }

    /// Why values laid out as `self` (the old side) cannot be used by code compiled as `new`:
    /// `None` if every type of `self` has the same layout in `new`. Types only `new` lists are
    /// fine: no old value of them exists. Fields are compared when both sides list them; a type
    /// listed without fields on either side is compared by size and alignment.
    pub fn mismatch(&self, new: &Layout) -> Option<LayoutMismatch> {
        for old in &self.types {
            let Some(now) = new.types.iter().find(|t| t.name == old.name) else {
                return Some(LayoutMismatch {
                    ty: old.name.clone(),
                    changes: vec!["no longer listed by the new build's `layout!`".into()],
                });
            };
            let changes = old.changes_to(now);
            if !changes.is_empty() {
                return Some(LayoutMismatch {
                    ty: old.name.clone(),
                    changes,
                });
            }
        }
        None
    }
}

impl TypeLayout {
    fn changes_to(&self, new: &TypeLayout) -> Vec<String> {
        let mut changes = Vec::new();
        if self.size != new.size {
            changes.push(format!("size {} -> {}", self.size, new.size));
        }
        if self.align != new.align {
            changes.push(format!("align {} -> {}", self.align, new.align));
        }
        // A side that lists the type without fields vouches for size and alignment only.
        let (Some(old_fields), Some(new_fields)) = (&self.fields, &new.fields) else {
            return changes;
        };
        for f in new_fields {
            match old_fields.iter().find(|o| o.name == f.name) {
                None => changes.push(format!("field `{}: {}` added", f.name, f.ty)),
                Some(o) if o.ty != f.ty => {
                    changes.push(format!("field `{}`: `{}` -> `{}`", f.name, o.ty, f.ty))
                }
                Some(o) if o.offset != f.offset => changes.push(format!(
                    "field `{}` moved: offset {} -> {}",
                    f.name, o.offset, f.offset
                )),
                Some(_) => {}
            }
        }
        for o in old_fields {
            if !new_fields.iter().any(|f| f.name == o.name) {
                changes.push(format!("field `{}: {}` removed", o.name, o.ty));
            }
        }
        changes
    }
}

/// What differs between two layouts: the first type that changed, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutMismatch {
    /// The type's name.
    pub ty: String,
    /// What changed, e.g. `size 8 -> 16`, ``field `extra: u32` added``.
    pub changes: Vec<String>,
}

impl fmt::Display for LayoutMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` changed ({})", self.ty, self.changes.join("; "))
    }
}

#[doc(hidden)]
pub fn field_type_name<S, F: ?Sized>(_: fn(&S) -> &F) -> &'static str {
    std::any::type_name::<F>()
}

/// The [`Layout`] of a list of types, as this crate sees them (an expression).
///
/// `Type` gives name, size and alignment; `Type { field, ... }` adds every field's name, type and
/// offset, and must list every field (checked by the compiler). See [`layout!`](crate::layout).
#[macro_export]
macro_rules! layout_of {
    ($($ty:path $({ $($field:tt),* $(,)? })?),* $(,)?) => {
        $crate::Layout {
            types: ::std::vec![$(
                $crate::TypeLayout {
                    name: ::std::string::String::from(::std::any::type_name::<$ty>()),
                    size: ::std::mem::size_of::<$ty>(),
                    align: ::std::mem::align_of::<$ty>(),
                    fields: $crate::__layout_fields!($ty $({ $($field),* })?),
                }
            ),*],
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __layout_fields {
    ($ty:path) => {
        ::std::option::Option::None
    };
    ($ty:path { $($field:tt),* }) => {{
        // Never called: fails to compile when a field of the type is not listed.
        #[allow(dead_code, unused_variables)]
        fn exhaustive(value: &$ty) {
            let $ty { $($field: _),* } = value;
        }
        ::std::option::Option::Some(::std::vec![$(
            $crate::FieldLayout {
                name: ::std::string::String::from(stringify!($field)),
                ty: ::std::string::String::from($crate::__field_type_name::<$ty, _>(|v| &v.$field)),
                offset: ::std::mem::offset_of!($ty, $field),
            }
        ),*])
    }};
}

/// Exports the layout of the types a logic library shares with its host, for the layout guard.
///
/// Write it once in the logic crate, at item level, and the same list in the host's
/// [`hot_module!`](crate::hot_module) block:
///
/// ```ignore
/// // logic/src/lib.rs
/// dylib_dev_runtime::layout!(State { counter, players }, Player { name, score }, Mode);
///
/// // host/src/main.rs
/// dylib_dev_runtime::hot_module! {
///     mod logic("logic") {
///         layout!(State { counter, players }, Player { name, score }, Mode);
///         unsafe extern "Rust" { pub fn step(state: &mut State); }
///     }
/// }
/// ```
///
/// List every type whose values cross the boundary, also those reached through a field (the
/// `Player`s inside `State`'s `Vec`): a type that is not listed is not checked. Types the logic
/// library owns and the host only holds (e.g. behind a raw pointer) are checked too: a new version
/// must list them with the layout the running version exported.
#[macro_export]
macro_rules! layout {
    ($($list:tt)*) => {
        /// The layout guard's fingerprint of this library's shared types (`dylib_dev_runtime::layout!`).
        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "Rust" fn dylib_dev_layout() -> ::std::string::String {
            $crate::layout_of!($($list)*).encode()
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)]
    struct State {
        counter: u64,
        name: String,
    }

    #[allow(dead_code)]
    struct Grown {
        counter: u64,
        name: String,
        extra: u32,
    }

    #[allow(dead_code)]
    struct Pair(u8, u32);

    #[allow(dead_code)]
    enum Mode {
        A,
        B(u64),
    }

    #[test]
    fn fingerprints_round_trip_and_name_what_changed() {
        let old = crate::layout_of!(State { counter, name }, Pair { 0, 1 }, Mode);
        assert_eq!(old.types.len(), 3);
        let state = &old.types[0];
        assert!(state.name.ends_with("::State"), "{}", state.name);
        let fields = state.fields.as_ref().unwrap();
        assert_eq!(fields[1].name, "name");
        assert_eq!(fields[1].ty, "alloc::string::String");
        assert_eq!(old.types[1].fields.as_ref().unwrap()[0].ty, "u8");
        assert!(old.types[2].fields.is_none());
        assert_eq!(Layout::decode(&old.encode()), Some(old.clone()));
        assert_eq!(old.mismatch(&old), None);

        // The same type grown by a field, under the old name.
        let mut new = crate::layout_of!(Grown { counter, name, extra }, Pair { 0, 1 }, Mode);
        new.types[0].name = state.name.clone();
        let m = old.mismatch(&new).unwrap();
        assert_eq!(m.ty, state.name);
        assert!(
            m.changes.iter().any(|c| c == "field `extra: u32` added"),
            "{m}"
        );
        assert!(m.to_string().contains("changed (size"), "{m}");

        // Types the new side lists in addition are fine; one it dropped is not.
        // Without fields on one side: size and alignment only.
        let mut opaque = old.clone();
        opaque.types[0].fields = None;
        assert_eq!(opaque.mismatch(&old), None);
        assert_eq!(old.mismatch(&opaque), None);
        let m = opaque.mismatch(&new).unwrap();
        assert_eq!(m.changes, ["size 32 -> 40"]);

        let fewer = Layout {
            types: old.types[..2].to_vec(),
        };
        assert_eq!(fewer.mismatch(&old), None);
        let m = old.mismatch(&fewer).unwrap();
        assert!(m.ty.ends_with("::Mode"), "{m}");
        assert!(Layout::decode("X\t1").is_none());
    }
}
