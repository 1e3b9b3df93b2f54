import { join, sep } from 'node:path';
import ts from 'typescript';

/**
 * The installed package as TypeScript users see it, checked in this process
 * with the repository's compiler: a program made of consumer files written
 * into the scratch project, compiled with the options users have, and what
 * it reports about those files and the package's declarations. Library
 * checking is on for the package's .d.ts files only: other libraries'
 * declarations (@types/node, dependencies) are read for their types but not
 * checked, which would take far longer and test them rather than us.
 */

/** Compiler options from a tsconfig.json-style `compilerOptions` object. */
export function compilerOptions(json: object, project: string): ts.CompilerOptions {
  const { options, errors } = ts.convertCompilerOptionsFromJson(json, project);
  if (errors.length > 0) throw new Error(ts.formatDiagnostics(errors, formatHost(project)));
  return options;
}

/** The declaration file each entry point resolves to from the project, the way the options resolve modules. */
export function resolveEntries(project: string, entries: readonly string[], options: ts.CompilerOptions): Map<string, string> {
  const importer = join(project, 'index.ts');
  const files = new Map<string, string>();
  for (const entry of entries) {
    const resolved = ts.resolveModuleName(entry, importer, options, ts.sys).resolvedModule;
    if (resolved === undefined) throw new Error(`TypeScript cannot resolve ${entry} from ${project}`);
    files.set(entry, resolved.resolvedFileName);
  }
  return files;
}

export function createProgram(project: string, rootFiles: readonly string[], options: ts.CompilerOptions): ts.Program {
  return ts.createProgram(rootFiles.map((file) => (file.startsWith(sep) ? file : join(project, file))), options);
}

/**
 * Every error and warning in the project's own files and in the installed
 * sockeye package's declarations, formatted like tsc prints them.
 */
export function problems(program: ts.Program, project: string): string[] {
  const packageDir = join(project, 'node_modules', 'sockeye') + sep;
  const ours = (file: string): boolean => file.startsWith(packageDir) || (file.startsWith(project + sep) && !file.includes(`${sep}node_modules${sep}`));
  const diagnostics: ts.Diagnostic[] = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  for (const source of program.getSourceFiles()) {
    if (!ours(source.fileName)) continue;
    diagnostics.push(...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source));
  }
  return diagnostics.map((diagnostic) => ts.formatDiagnostic(diagnostic, formatHost(project)).trim());
}

export interface DeclaredNames {
  /** Names with a runtime value (classes, functions, constants, enums): what import() must also give. */
  values: string[];
  /** Type-only names (interfaces, type aliases, and anything exported with `export type`). */
  types: string[];
}

/** The names each entry point's declarations export, split into values and types, each sorted. */
export function declaredNames(program: ts.Program, entryFiles: ReadonlyMap<string, string>): Record<string, DeclaredNames> {
  const checker = program.getTypeChecker();
  const result: Record<string, DeclaredNames> = {};
  for (const [entry, file] of entryFiles) {
    const source = program.getSourceFile(file);
    const module = source === undefined ? undefined : checker.getSymbolAtLocation(source);
    if (module === undefined) throw new Error(`${file} is not a module of the program`);
    const names: DeclaredNames = { values: [], types: [] };
    for (const symbol of checker.getExportsOfModule(module)) {
      const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      const typeOnly = symbol.declarations?.some((declaration) => ts.isTypeOnlyImportOrExportDeclaration(declaration)) === true;
      (target.flags & ts.SymbolFlags.Value && !typeOnly ? names.values : names.types).push(symbol.name);
    }
    names.values.sort();
    names.types.sort();
    result[entry] = names;
  }
  return result;
}

function formatHost(project: string): ts.FormatDiagnosticsHost {
  return { getCanonicalFileName: (name) => name, getCurrentDirectory: () => project, getNewLine: () => '\n' };
}
