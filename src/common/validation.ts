import { ValidationError } from 'class-validator';
import { FieldProblem, ValidationException } from './domain-exception';

/** Flattens nested class-validator errors into `{field, message}` with dotted/indexed paths (`images[2].duracao`). */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldProblem[] {
  const problems: FieldProblem[] = [];
  for (const error of errors) {
    const key = /^\d+$/.test(error.property) ? `[${error.property}]` : error.property;
    const field = parent ? (key.startsWith('[') ? `${parent}${key}` : `${parent}.${key}`) : key;
    for (const message of Object.values(error.constraints ?? {})) {
      // class-validator names only the leaf property; name the full path so nested problems are unambiguous.
      const text = message.replace(/^property /, '');
      const named = text.startsWith(`${error.property} `) ? `${field}${text.slice(error.property.length)}` : text;
      problems.push({ field, message: named });
    }
    if (error.children?.length) problems.push(...flattenValidationErrors(error.children, field));
  }
  return problems;
}

export function validationExceptionFactory(errors: ValidationError[]): ValidationException {
  return new ValidationException(flattenValidationErrors(errors));
}
