//! Every kernel variant's WGSL, reflected through naga, against its Rust declaration: binding
//! names, group and index, storage class and access; snippets' globals bound; uniform structs
//! laid out as their Rust twins.

use naga::{AddressSpace, StorageAccess, TypeInner};

use super::registry;
use crate::gpu::{Access, Binding};

fn parse(label: &str, source: &str) -> naga::Module {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(source)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{label}: {e:?}"));
    module
}

/// Differences between the module's bound globals and `layout`.
fn binding_mismatches(module: &naga::Module, layout: &[Binding]) -> Vec<String> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (_, var) in module.global_variables.iter() {
        let Some(binding) = &var.binding else {
            continue;
        };
        let name = var.name.clone().unwrap_or_default();
        let access = match var.space {
            AddressSpace::Uniform => Some(Access::Uniform),
            AddressSpace::Storage { access } if access.contains(StorageAccess::STORE) => {
                Some(Access::ReadWrite)
            }
            AddressSpace::Storage { .. } => Some(Access::Read),
            _ => None,
        };
        if binding.group != 0 {
            problems.push(format!("{name} is in group {}", binding.group));
        }
        found.push((binding.binding, name, access));
    }
    found.sort_by_key(|(index, ..)| *index);
    if found.len() != layout.len() {
        problems.push(format!(
            "WGSL binds {} globals, Rust declares {}",
            found.len(),
            layout.len()
        ));
    }
    for (i, declared) in layout.iter().enumerate() {
        match found.iter().find(|(index, ..)| *index == i as u32) {
            None => problems.push(format!("no WGSL binding {i} ({})", declared.name)),
            Some((_, name, access)) => {
                if name != declared.name {
                    problems.push(format!(
                        "binding {i} is {name} in WGSL, {} in Rust",
                        declared.name
                    ));
                }
                if *access != Some(declared.access) {
                    problems.push(format!(
                        "binding {i} ({name}) is {access:?} in WGSL, {:?} in Rust",
                        declared.access
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn every_kernel_variant_matches_its_rust_declaration() {
    let variants = registry();
    assert!(variants.len() >= 40, "{} variants", variants.len());
    for v in &variants {
        let source = v.module.source();
        let module = parse(&v.label, &source);
        let problems = binding_mismatches(&module, v.layout);
        assert!(problems.is_empty(), "{}: {problems:?}", v.label);
        for snippet in v.module.snippets() {
            for global in snippet.reads_globals {
                assert!(
                    v.layout.iter().any(|b| b.name == *global),
                    "{}: snippet {} reads {global}, which the kernel does not bind",
                    v.label,
                    snippet.name
                );
            }
        }
        // Uniform structs: every member a 4-byte scalar at 4 × its index, as the Rust twin.
        for (_, var) in module.global_variables.iter() {
            if var.space != AddressSpace::Uniform {
                continue;
            }
            let TypeInner::Struct { members, span } = &module.types[var.ty].inner else {
                panic!("{}: uniform {:?} is not a struct", v.label, var.name);
            };
            for (i, m) in members.iter().enumerate() {
                assert_eq!(m.offset, 4 * i as u32, "{}: {:?}", v.label, m.name);
            }
            assert_eq!(*span, 4 * members.len() as u32, "{}", v.label);
        }
    }
}

#[test]
fn a_misdeclared_binding_is_reported() {
    let variant = registry()
        .into_iter()
        .find(|v| v.label.starts_with("MatMul"))
        .expect("a mat-mul variant");
    let module = parse(&variant.label, &variant.module.source());
    let mut swapped = variant.layout.to_vec();
    swapped.swap(0, 1);
    let problems = binding_mismatches(&module, &swapped);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("binding 0 is W in WGSL, X in Rust")),
        "{problems:?}"
    );
    let mut wrong_access = variant.layout.to_vec();
    wrong_access[2].access = Access::Read;
    let problems = binding_mismatches(&module, &wrong_access);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("binding 2 (Y) is Some(ReadWrite) in WGSL, Read in Rust")),
        "{problems:?}"
    );
    let problems = binding_mismatches(&module, &variant.layout[..5]);
    assert!(problems
        .iter()
        .any(|p| p.contains("WGSL binds 6 globals, Rust declares 5")));
}
