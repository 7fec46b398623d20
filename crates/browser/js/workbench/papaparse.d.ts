// The part of papaparse (npm, bundled into the workbench) that file.js uses.
declare module "papaparse" {
  interface ParseError {
    type: string;
    code: string;
    message: string;
    row?: number;
  }
  interface ParseResult {
    data: unknown[];
    errors: ParseError[];
    meta: { delimiter: string };
  }
  interface ParseConfig {
    delimiter?: string;
    delimitersToGuess?: string[];
    skipEmptyLines?: boolean | "greedy";
  }
  const Papa: { parse(input: string, config?: ParseConfig): ParseResult };
  export default Papa;
}
