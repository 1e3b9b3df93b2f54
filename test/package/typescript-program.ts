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
  return ts.createProgram(
    rootFiles.map((file) => (file.startsWith(sep) ? file : join(project, file))),
    options,
  );
}

/**
 * Every error and warning in the project's own files and in the installed
 * sockeye package's declarations, formatted like tsc prints them.
 */
export function problems(program: ts.Program, project: string): string[] {
  const packageDir = join(project, 'node_modules', 'sockeye') + sep;
  const ours = (file: string): boolean =>
    file.startsWith(packageDir) || (file.startsWith(project + sep) && !file.includes(`${sep}node_modules${sep}`));
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

/**
 * Types the public declarations mention that no entry point exports: a user
 * meets them (a parameter, a return value, a base interface) but cannot
 * name them. Walks every exported declaration of the entry points, and the
 * declarations of what it finds, within the package's own files. Only types
 * their own module exports count: a module's private helper alias is its
 * author's business, a named type left out of the entry points is an
 * oversight. Each answer reads `Name (in Where)`.
 */
export function unnameableTypes(program: ts.Program, entryFiles: ReadonlyMap<string, string>, packageDir: string): string[] {
  const checker = program.getTypeChecker();
  const resolve = (symbol: ts.Symbol): ts.Symbol => (symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol);
  const ours = (symbol: ts.Symbol): boolean =>
    symbol.declarations?.some((declaration) => declaration.getSourceFile().fileName.startsWith(packageDir + sep)) === true;
  const exported = new Set<ts.Symbol>();
  for (const file of entryFiles.values()) {
    const module = checker.getSymbolAtLocation(program.getSourceFile(file)!);
    for (const symbol of module === undefined ? [] : checker.getExportsOfModule(module)) exported.add(resolve(symbol));
  }
  const exportedByItsModule = (symbol: ts.Symbol): boolean =>
    symbol.declarations?.some((declaration) => {
      const module = checker.getSymbolAtLocation(declaration.getSourceFile());
      return module !== undefined && checker.getExportsOfModule(module).some((candidate) => resolve(candidate) === symbol);
    }) === true;
  const found = new Map<string, string>();
  const visited = new Set<ts.Symbol>();
  const queue: ts.Symbol[] = [...exported];
  for (let steps = 0; queue.length > 0 && steps < 100_000; steps++) {
    const owner = queue.shift()!;
    if (visited.has(owner)) continue;
    visited.add(owner);
    for (const declaration of owner.declarations ?? []) {
      const visit = (node: ts.Node): void => {
        // Private members carry no types in declarations; skip them all the same.
        if (ts.canHaveModifiers(node) && ts.getModifiers(node)?.some((modifier) => modifier.kind === ts.SyntaxKind.PrivateKeyword)) return;
        const name =
          ts.isTypeReferenceNode(node) ? node.typeName
          : ts.isExpressionWithTypeArguments(node) ? node.expression
          : undefined;
        const referenced = name === undefined ? undefined : checker.getSymbolAtLocation(name);
        if (referenced !== undefined) {
          const target = resolve(referenced);
          if (!(target.flags & ts.SymbolFlags.TypeParameter) && ours(target)) {
            if (!exported.has(target) && !found.has(target.name) && exportedByItsModule(target)) found.set(target.name, owner.name);
            queue.push(target);
          }
        }
        ts.forEachChild(node, visit);
      };
      visit(declaration);
    }
  }
  return [...found].map(([name, where]) => `${name} (in ${where})`).sort();
}

function formatHost(project: string): ts.FormatDiagnosticsHost {
  return { getCanonicalFileName: (name) => name, getCurrentDirectory: () => project, getNewLine: () => '\n' };
}
