// Every case #[hot] refuses; `cargo check` must print one error per item, naming what is supported.
use hot_rt::hot;

#[hot]
fn generic<T: Default>() -> T { T::default() }

#[hot]
async fn asynchronous() -> u32 { 1 }

#[hot]
extern "C" fn c_abi(x: u32) -> u32 { x }

#[hot]
fn impl_arg(x: impl Into<u32>) -> u32 { x.into() }

#[hot]
fn impl_ret() -> impl Fn() { || () }

#[hot]
const fn konst() -> u32 { 1 }

struct S;
impl S {
    #[hot]
    fn method(&self) -> u32 { 1 }
}

// Accepted: lifetimes, unsafe fn, several arguments, no result.
#[hot]
fn lifetimes<'a>(x: &'a str, _y: &str) -> &'a str { x }
#[hot]
unsafe fn unsafe_ok(p: *const u32) -> u32 { unsafe { *p } }
#[hot]
fn unit(_a: u8, _b: (u16, u32)) {}

fn main() {}

struct T;
impl T {
    // No `self`: the macro cannot tell this from a free function (it sees only the item).
    #[hot]
    fn associated(x: u32) -> u32 { x }
}
